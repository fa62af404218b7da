"""MemoryVectorIndex beyond the conformance suite: the SimHash pre-filter of large partitions finds what a
full scan finds; expiry, caps and eviction."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pilothouse.vectors import FloatArray, MemoryVectorIndex, VectorItem
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.memory import FLAT_MAX, hamming_cutoff
from tests.vectors.conftest import near, unit


def item(key: str, vector: FloatArray, ttl_s: float = 60.0) -> VectorItem:
    return VectorItem(key, vector, text=f"text {key}", expires_at=time.time() + ttl_s)


def test_hamming_cutoff_grows_as_the_threshold_falls() -> None:
    cutoffs = [hamming_cutoff(t) for t in (0.99, 0.95, 0.9, 0.8, 0.5)]
    assert cutoffs == sorted(cutoffs)
    assert cutoffs[0] > 0 and cutoffs[-1] < 384


def test_large_partition_finds_what_a_full_scan_finds() -> None:
    rng = np.random.default_rng(7)
    n = FLAT_MAX * 2 + 100  # above FLAT_MAX: the SimHash pre-filter is used
    base = rng.standard_normal((n, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = MemoryVectorIndex(max_per_partition=n + 10)
    index.add(item(f"r{i}", base[i]) for i in range(n))
    for trial in range(40):
        target = int(rng.integers(n))
        cosine = 0.86 + 0.13 * (trial / 40)
        q = near(base[target], cosine, seed=1000 + trial)
        exact = base @ q
        expected = [f"r{i}" for i in np.argsort(-exact) if exact[i] >= 0.85][:3]
        found = index.search(q, k=3, min_score=0.85)
        assert [m.id for m in found] == expected
        assert found[0].score == pytest.approx(float(exact[target]), abs=1e-5)


def test_maintain_drops_expired_rows_and_caps_the_oldest() -> None:
    index = MemoryVectorIndex(max_per_partition=5)
    index.add([item("old", unit(1), ttl_s=-1), *(item(f"k{i}", unit(10 + i)) for i in range(3))])
    index.maintain()
    assert len(index) == 3
    index.add(item(f"n{i}", unit(20 + i)) for i in range(4))  # 7 > 5: the oldest two go
    assert len(index) == 5
    assert index.search(unit(10), k=1, min_score=0.99) == []
    assert index.search(unit(23), k=1, min_score=0.99)[0].id == "n3"


def test_index_evicts_least_recently_used_partitions() -> None:
    evicted: list[str] = []
    index = MemoryVectorIndex(max_per_partition=100, max_total=4, on_evict=evicted.append)
    index.add([item("a1", unit(1)), item("a2", unit(2))], partition="a")
    index.add([item("b1", unit(3))], partition="b")
    index.search(unit(1), k=1, partition="a", min_score=0.9)  # "a" is now the most recently used
    index.add([item("c1", unit(4)), item("c2", unit(5))], partition="c")
    assert evicted == ["b"]
    assert set(index.partitions) == {"a", "c"} and len(index) == 4


def test_index_maintain_removes_dead_partitions() -> None:
    index = MemoryVectorIndex(max_per_partition=100)
    index.add([item("d", unit(1), ttl_s=-1)], partition="dead")
    index.add([item("a", unit(2)), item("x", unit(3), ttl_s=-1)], partition="alive")
    index.maintain()
    assert set(index.partitions) == {"alive"}
    assert len(index) == 1


def test_dimension_given_at_construction_is_kept_after_clear() -> None:
    index = MemoryVectorIndex(dim=8)
    index.add([item("a", unit(1, dim=8))])
    index.clear()
    with pytest.raises(ValueError, match="dimension 4 does not fit an index of dimension 8"):
        index.add([item("b", unit(2, dim=4))])


def test_large_partition_filters_before_the_simhash_candidates_are_cut() -> None:
    """Above FLAT_MAX, `where` narrows the candidates before the rerank cut: a selective filter is answered by an
    exact scan of the allowed rows, a broad one through the SimHash pre-filter, both with k matches."""
    rng = np.random.default_rng(11)
    n = FLAT_MAX * 2 + 50
    base = rng.standard_normal((n, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = MemoryVectorIndex(max_per_partition=n + 10)
    index.add(VectorItem(f"r{i}", base[i], metadata={"shard": i % 100, "even": i % 2 == 0}) for i in range(n))
    rare = Filter(equals={"shard": 7})  # ~164 rows: exact over them
    broad = Filter(equals={"even": True})  # half the rows: SimHash candidates, then the filter
    for trial in range(10):
        q = rng.standard_normal(384).astype(np.float32)
        q /= np.linalg.norm(q)
        exact = base @ q
        for where, allowed in ((rare, np.arange(7, n, 100)), (broad, np.arange(0, n, 2))):
            best = allowed[np.argsort(-exact[allowed])][:5]
            found = index.search(q, k=5, where=where)
            assert all(where.matches(h.metadata) for h in found)
            if where is rare:
                assert [h.id for h in found] == [f"r{i}" for i in best]
        target = int(rng.integers(0, n // 2)) * 2
        close = near(base[target], 0.95, seed=2000 + trial)
        found = index.search(close, k=1, min_score=0.9, where=broad)
        assert [h.id for h in found] == [f"r{target}"]
