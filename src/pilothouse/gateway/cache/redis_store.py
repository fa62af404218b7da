"""The Redis cache backend, shared by every replica (PILOTHOUSE_REDIS_URL).

Entries are plain keys with a TTL (`SET .. PX`): `{prefix}e:{namespace}:{key}`.

The semantic index lives in Redis as one stream per partition, `{prefix}v:{partition}`: each vector is an
entry (`XADD`) with its entry key, text, expiry and the vector as float16 (768 bytes for MiniLM; the
similarity error this adds is ~1e-4). Streams are trimmed by age (MINID: entries older than the longest TTL)
and by length, and expire when a partition sees no writes for that long. Each replica searches its own
NumPy copy of a partition (vectors/memory.py) and, before each lookup, fetches what was added since it last looked
(`XRANGE (last-id +`, one round trip, bounded by `sync_batch`; a larger backlog, such as a partition seen
for the first time, is fetched page by page in the background: mirror.py).
"""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np
from redis.asyncio import BlockingConnectionPool, Redis

from pilothouse.gateway.cache.mirror import Mirror
from pilothouse.gateway.cache.store import VectorMatch, VectorRecord
from pilothouse.vectors import FloatArray


class RedisCacheStore:
    name = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "pilothouse:cache:",
        retention_s: float = 3600.0,
        max_vectors_per_partition: int = 100_000,
        max_vectors: int = 200_000,
        sync_batch: int = 512,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retention_s = retention_s
        self.max_vectors_per_partition = max_vectors_per_partition
        self.sync_batch = sync_batch
        self.mirror: Mirror[bytes] = Mirror(
            self._fetch, max_per_partition=max_vectors_per_partition, max_total=max_vectors, sync_batch=sync_batch
        )
        self.index = self.mirror.index

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 128, **options: Any) -> RedisCacheStore:
        """A store on its own connection pool: beyond `max_connections` concurrent commands wait for a free
        connection (up to 5 s) instead of failing."""
        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5)
        return cls(Redis(connection_pool=pool), **options)

    def _entry_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}e:{namespace}:{key}"

    def _stream_key(self, partition: str) -> str:
        return f"{self.prefix}v:{partition}"

    # -- entries ----------------------------------------------------------------------------------
    async def get(self, namespace: str, key: str) -> bytes | None:
        value = await self.client.get(self._entry_key(namespace, key))
        return cast("bytes | None", value)

    async def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        await self.client.set(self._entry_key(namespace, key), value, px=max(1, round(ttl_s * 1000)))

    async def delete(self, namespace: str, key: str) -> None:
        await self.client.delete(self._entry_key(namespace, key))

    # -- vectors ----------------------------------------------------------------------------------
    async def add_vector(self, partition: str, record: VectorRecord) -> None:
        stream = self._stream_key(partition)
        fields: dict[Any, Any] = {
            b"k": record.key.encode(),
            b"t": record.text.encode(),
            b"x": repr(record.expires_at).encode(),
            b"v": np.asarray(record.vector, dtype="<f2").tobytes(),
        }
        retention_ms = round(self.retention_s * 1000)
        oldest = f"{int(time.time() * 1000) - retention_ms}-0"
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(stream, fields, minid=oldest, approximate=True)
        pipe.xtrim(stream, maxlen=self.max_vectors_per_partition, approximate=True)
        pipe.pexpire(stream, retention_ms + 1000)
        await pipe.execute()

    async def refresh(self, partition: str) -> None:
        await self.mirror.refresh(partition)

    async def _fetch(
        self, partition: str, cursor: bytes | None, count: int
    ) -> tuple[list[VectorRecord], bytes | None, int]:
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.client.xrange(self._stream_key(partition), min=b"(" + (cursor or b"0-0"), max=b"+", count=count),
        )
        if not entries:
            return [], cursor, 0
        now = time.time()
        records = []
        for _entry_id, fields in entries:
            expires_at = float(fields[b"x"])
            if expires_at > now:
                vector = np.frombuffer(fields[b"v"], dtype="<f2").astype(np.float32)
                records.append(VectorRecord(fields[b"k"].decode(), fields[b"t"].decode(), vector, expires_at))
        return records, entries[-1][0], len(entries)

    def search_vectors(self, partition: str, vector: FloatArray, *, limit: int, min_score: float) -> list[VectorMatch]:
        return self.mirror.search(partition, vector, limit=limit, min_score=min_score)

    async def aclose(self) -> None:
        await self.mirror.aclose()
        await self.client.aclose()
