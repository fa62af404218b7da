"""The in-process cache backend: a bounded LRU of entries with expiry, and a vector index (by default the
NumPy one, `vectors.MemoryVectorIndex`).

For one process. With several replicas use the Redis backend (`PILOTHOUSE_REDIS_URL`), which they share.
Bounded by entry count and total bytes (least recently used dropped first), so memory stays flat however
many distinct requests pass.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from pilothouse.gateway.cache.store import VectorMatch, VectorRecord
from pilothouse.vectors import FloatArray, MemoryVectorIndex, VectorIndex


class MemoryCacheStore:
    name = "memory"

    def __init__(
        self,
        *,
        max_entries: int = 50_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_vectors_per_partition: int = 200_000,
        max_vectors: int = 1_000_000,
        index: VectorIndex | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self.index: VectorIndex = index or MemoryVectorIndex(
            max_per_partition=max_vectors_per_partition, max_total=max_vectors
        )

    async def get(self, namespace: str, key: str) -> bytes | None:
        slot = (namespace, key)
        found = self._entries.get(slot)
        if found is None:
            return None
        value, expires_at = found
        if expires_at <= time.time():
            self._remove(slot)
            return None
        self._entries.move_to_end(slot)
        return value

    async def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        slot = (namespace, key)
        if slot in self._entries:
            self._remove(slot)
        if len(value) > self.max_bytes:
            return
        self._entries[slot] = (value, time.time() + ttl_s)
        self._bytes += len(value)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)

    async def delete(self, namespace: str, key: str) -> None:
        if (namespace, key) in self._entries:
            self._remove((namespace, key))

    def _remove(self, slot: tuple[str, str]) -> None:
        value, _ = self._entries.pop(slot)
        self._bytes -= len(value)

    async def add_vector(self, partition: str, record: VectorRecord) -> None:
        self.index.add([record.item()], partition=partition)

    async def refresh(self, partition: str) -> None:
        return None

    def search_vectors(self, partition: str, vector: FloatArray, *, limit: int, min_score: float) -> list[VectorMatch]:
        hits = self.index.search(vector, k=limit, partition=partition, min_score=min_score)
        return [VectorMatch.from_hit(hit) for hit in hits]

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self.index.clear()

    def __len__(self) -> int:
        return len(self._entries)
