"""The NumPy vector index: the SimHash pre-filter of large partitions finds what a full scan finds; expiry,
caps and eviction."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pilothouse.gateway.cache.store import VectorRecord
from pilothouse.gateway.cache.vectors import FLAT_MAX, VectorIndex, VectorPartition, hamming_cutoff
from tests.gateway.cache.conftest import near, unit


def rec(key: str, vector: np.ndarray, ttl_s: float = 60.0) -> VectorRecord:
    return VectorRecord(key, f"text {key}", vector, time.time() + ttl_s)


def test_hamming_cutoff_grows_as_the_threshold_falls() -> None:
    cutoffs = [hamming_cutoff(t) for t in (0.99, 0.95, 0.9, 0.8, 0.5)]
    assert cutoffs == sorted(cutoffs)
    assert cutoffs[0] > 0 and cutoffs[-1] < 384


def test_large_partition_finds_what_a_full_scan_finds() -> None:
    rng = np.random.default_rng(7)
    n = FLAT_MAX * 2 + 100  # above FLAT_MAX: the SimHash pre-filter is used
    base = rng.standard_normal((n, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    part = VectorPartition(384, max_entries=n + 10)
    part.add(rec(f"r{i}", base[i]) for i in range(n))
    now = time.time()
    for trial in range(40):
        target = int(rng.integers(n))
        cosine = 0.86 + 0.13 * (trial / 40)
        q = near(base[target], cosine, seed=1000 + trial)
        exact = base @ q
        expected = [f"r{i}" for i in np.argsort(-exact) if exact[i] >= 0.85][:3]
        found = part.search(q, limit=3, min_score=0.85, now=now)
        assert [m.key for m in found] == expected
        assert found[0].score == pytest.approx(float(exact[target]), abs=1e-5)


def test_maintain_drops_expired_rows_and_caps_the_oldest() -> None:
    part = VectorPartition(384, max_entries=5)
    part.add([rec("old", unit(1), ttl_s=-1), *(rec(f"k{i}", unit(10 + i)) for i in range(3))])
    part.maintain(time.time())
    assert len(part) == 3
    part.add(rec(f"n{i}", unit(20 + i)) for i in range(4))  # 7 > 5: the oldest two go
    assert len(part) == 5
    assert part.search(unit(10), limit=1, min_score=0.99, now=time.time()) == []
    assert part.search(unit(23), limit=1, min_score=0.99, now=time.time())[0].key == "n3"


def test_index_evicts_least_recently_used_partitions() -> None:
    evicted: list[str] = []
    index = VectorIndex(100, max_total=4, on_evict=evicted.append)
    index.add("a", [rec("a1", unit(1)), rec("a2", unit(2))])
    index.add("b", [rec("b1", unit(3))])
    index.search("a", unit(1), limit=1, min_score=0.9)  # "a" is now the most recently used
    index.add("c", [rec("c1", unit(4)), rec("c2", unit(5))])
    assert evicted == ["b"]
    assert set(index.partitions) == {"a", "c"} and index.size() == 4


def test_index_maintain_removes_dead_partitions() -> None:
    index = VectorIndex(100)
    index.add("dead", [rec("d", unit(1), ttl_s=-1)])
    index.add("alive", [rec("a", unit(2)), rec("x", unit(3), ttl_s=-1)])
    index.maintain()
    assert set(index.partitions) == {"alive"}
    assert index.size() == 1
