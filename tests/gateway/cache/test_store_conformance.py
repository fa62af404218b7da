"""The CacheStore conformance suite: every backend passes the same tests (memory, SQLite, Redis).

`CacheStoreConformance` holds the tests; each backend's class provides `store` and `replica` (a second
store over the same data: another process's view for SQLite and Redis, the same object for memory)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.redis_store import RedisCacheStore
from pilothouse.gateway.cache.sqlite_store import SQLiteCacheStore
from pilothouse.gateway.cache.store import CacheStore, VectorRecord
from tests.conftest import REDIS_URL
from tests.vectors.conftest import near, unit

pytestmark = pytest.mark.asyncio


def record(key: str, vector: np.ndarray, ttl_s: float = 60.0, text: str | None = None) -> VectorRecord:
    return VectorRecord(key=key, text=text or f"question {key}", vector=vector, expires_at=time.time() + ttl_s)


async def search(store: CacheStore, partition: str, vector: np.ndarray, limit: int = 5, min_score: float = 0.5):
    await store.refresh(partition)
    return store.search_vectors(partition, vector, limit=limit, min_score=min_score)


class CacheStoreConformance:
    """The behaviour every CacheStore backend must have."""

    # -- entries ----------------------------------------------------------------------------------
    async def test_missing_entry_is_none(self, store: CacheStore) -> None:
        assert await store.get("p1", "nope") is None

    async def test_set_get_replace_delete(self, store: CacheStore) -> None:
        await store.set("p1", "k", b"first", 60)
        assert await store.get("p1", "k") == b"first"
        await store.set("p1", "k", b"second", 60)
        assert await store.get("p1", "k") == b"second"
        await store.delete("p1", "k")
        assert await store.get("p1", "k") is None
        await store.delete("p1", "k")  # deleting what is not there is fine

    async def test_namespaces_are_separate(self, store: CacheStore) -> None:
        await store.set("project-a", "k", b"a", 60)
        await store.set("project-b", "k", b"b", 60)
        assert await store.get("project-a", "k") == b"a"
        assert await store.get("project-b", "k") == b"b"
        assert await store.get("project-c", "k") is None

    async def test_entries_expire(self, store: CacheStore) -> None:
        await store.set("p1", "short", b"x", 0.15)
        await store.set("p1", "long", b"y", 60)
        assert await store.get("p1", "short") == b"x"
        await asyncio.sleep(0.3)
        assert await store.get("p1", "short") is None
        assert await store.get("p1", "long") == b"y"

    async def test_binary_values_round_trip(self, store: CacheStore) -> None:
        value = bytes(range(256)) * 64
        await store.set("p1", "bin", value, 60)
        assert await store.get("p1", "bin") == value

    async def test_replica_sees_entries(self, store: CacheStore, replica: CacheStore) -> None:
        await store.set("p1", "shared", b"v", 60)
        assert await replica.get("p1", "shared") == b"v"

    # -- vectors ----------------------------------------------------------------------------------
    async def test_search_empty_partition(self, store: CacheStore) -> None:
        assert await search(store, "nothing-here", unit(1)) == []

    async def test_search_best_first_with_scores(self, store: CacheStore) -> None:
        q = unit(1)
        await store.add_vector("part", record("far", near(q, 0.6, 2)))
        await store.add_vector("part", record("best", near(q, 0.95, 3), text="the best"))
        await store.add_vector("part", record("mid", near(q, 0.8, 4)))
        await store.add_vector("part", record("unrelated", unit(5)))
        found = await search(store, "part", q)
        assert [m.key for m in found] == ["best", "mid", "far"]
        assert found[0].text == "the best"
        assert [round(m.score, 2) for m in found] == [0.95, 0.8, 0.6]

    async def test_min_score_and_limit(self, store: CacheStore) -> None:
        q = unit(10)
        for i, cos in enumerate([0.99, 0.97, 0.95, 0.9, 0.7]):
            await store.add_vector("part", record(f"k{i}", near(q, cos, 20 + i)))
        found = await search(store, "part", q, limit=2, min_score=0.85)
        assert [m.key for m in found] == ["k0", "k1"]
        found = await search(store, "part", q, limit=10, min_score=0.85)
        assert [m.key for m in found] == ["k0", "k1", "k2", "k3"]

    async def test_partitions_are_separate(self, store: CacheStore) -> None:
        q = unit(30)
        await store.add_vector("context-a", record("a", q))
        assert await search(store, "context-b", q) == []
        assert [m.key for m in await search(store, "context-a", q)] == ["a"]

    async def test_expired_vectors_are_not_found(self, store: CacheStore) -> None:
        q = unit(40)
        await store.add_vector("part", record("gone", q, ttl_s=0.15))
        await store.add_vector("part", record("kept", near(q, 0.9, 41)))
        await asyncio.sleep(0.3)
        assert [m.key for m in await search(store, "part", q)] == ["kept"]

    async def test_one_match_per_entry_key(self, store: CacheStore) -> None:
        q = unit(50)
        await store.add_vector("part", record("same", q))
        await store.add_vector("part", record("same", near(q, 0.9, 51)))
        found = await search(store, "part", q)
        assert [m.key for m in found] == ["same"]
        assert found[0].score == pytest.approx(1.0, abs=1e-3)

    async def test_replica_sees_vectors(self, store: CacheStore, replica: CacheStore) -> None:
        q = unit(60)
        await replica.refresh("part")  # the replica has looked at the partition before the add
        await store.add_vector("part", record("from-store", q))
        assert [m.key for m in await search(replica, "part", q)] == ["from-store"]
        await replica.add_vector("part", record("from-replica", near(q, 0.9, 61)))
        assert [m.key for m in await search(store, "part", q)] == ["from-store", "from-replica"]


class TestMemoryCacheStore(CacheStoreConformance):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryCacheStore]:
        store = MemoryCacheStore()
        yield store
        await store.aclose()

    @pytest.fixture
    def replica(self, store: MemoryCacheStore) -> MemoryCacheStore:
        return store  # one process: its replica is itself

    async def test_bounded_by_entries_and_bytes(self) -> None:
        store = MemoryCacheStore(max_entries=3, max_bytes=1000)
        for i in range(5):
            await store.set("p", f"k{i}", b"x", 60)
        assert len(store) == 3
        assert await store.get("p", "k0") is None and await store.get("p", "k4") == b"x"
        await store.get("p", "k2")  # used: now the most recent
        await store.set("p", "big", b"y" * 900, 60)
        assert await store.get("p", "k2") == b"x"  # the least recently used went first
        assert await store.get("p", "k3") is None
        await store.set("p", "too-big", b"z" * 2000, 60)
        assert await store.get("p", "too-big") is None


class TestRedisCacheStore(CacheStoreConformance):
    @pytest.fixture
    async def store(self, redis: Redis, prefix: str) -> AsyncIterator[RedisCacheStore]:
        store = RedisCacheStore.from_url(REDIS_URL, prefix=prefix, retention_s=60)
        yield store
        await store.aclose()

    @pytest.fixture
    async def replica(self, redis: Redis, prefix: str) -> AsyncIterator[RedisCacheStore]:
        replica = RedisCacheStore.from_url(REDIS_URL, prefix=prefix, retention_s=60)
        yield replica
        await replica.aclose()

    async def test_keys_live_under_the_prefix_with_a_ttl(
        self, store: RedisCacheStore, redis: Redis, prefix: str
    ) -> None:
        await store.set("p1", "k", b"v", 30)
        await store.add_vector("part", record("k", unit(70)))
        keys = sorted([k.decode() async for k in redis.scan_iter(match=prefix + "*")])
        assert keys == [f"{prefix}e:p1:k", f"{prefix}v:part"]
        assert 0 < await redis.pttl(f"{prefix}e:p1:k") <= 30_000
        assert 0 < await redis.pttl(f"{prefix}v:part") <= 61_000

    async def test_backlog_is_fetched_in_the_background(self, redis: Redis, prefix: str) -> None:
        writer = RedisCacheStore.from_url(REDIS_URL, prefix=prefix, retention_s=60)
        reader = RedisCacheStore.from_url(REDIS_URL, prefix=prefix, retention_s=60, sync_batch=5)
        try:
            q = unit(80)
            for i in range(23):
                await writer.add_vector("part", record(f"k{i}", near(q, 0.5 + i / 50, 100 + i)))
            await reader.refresh("part")
            assert 5 <= len(reader.index) <= 23  # the first page at once, the rest in the background
            for _ in range(50):
                if len(reader.index) == 23:
                    break
                await asyncio.sleep(0.02)
            assert len(reader.index) == 23
            assert reader.search_vectors("part", q, limit=1, min_score=0.9)[0].key == "k22"
        finally:
            await writer.aclose()
            await reader.aclose()

    async def test_vectors_are_stored_compactly(self, store: RedisCacheStore, redis: Redis, prefix: str) -> None:
        await store.add_vector("part", record("k", unit(90)))
        [(_, fields)] = await redis.xrange(f"{prefix}v:part")
        assert len(fields[b"v"]) == 384 * 2  # float16


class TestSQLiteCacheStore(CacheStoreConformance):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteCacheStore]:
        store = SQLiteCacheStore(tmp_path / "cache.db")
        yield store
        await store.aclose()

    @pytest.fixture
    async def replica(self, store: SQLiteCacheStore, tmp_path: Path) -> AsyncIterator[SQLiteCacheStore]:
        replica = SQLiteCacheStore(tmp_path / "cache.db")  # another process on the same file
        yield replica
        await replica.aclose()

    async def test_survives_a_restart(self, tmp_path: Path) -> None:
        first = SQLiteCacheStore(tmp_path / "c.db")
        await first.set("p", "k", b"answer", 60)
        await first.add_vector("part", record("k", unit(1)))
        await first.aclose()
        second = SQLiteCacheStore(tmp_path / "c.db")
        try:
            assert await second.get("p", "k") == b"answer"
            assert [m.key for m in await search(second, "part", unit(1))] == ["k"]
        finally:
            await second.aclose()

    async def test_sweep_drops_expired_rows_and_caps_entries(self, tmp_path: Path) -> None:
        store = SQLiteCacheStore(tmp_path / "c.db", max_entries=3, sweep_every_s=0)
        try:
            await store.set("p", "gone", b"x", 0.01)
            await asyncio.sleep(0.05)
            for i in range(5):
                await store.set("p", f"k{i}", b"x", 60 + i)
            rows = store._db.execute("SELECT key FROM entries ORDER BY key").fetchall()
            assert [r[0] for r in rows] == ["k2", "k3", "k4"]
        finally:
            await store.aclose()
