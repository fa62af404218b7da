"""The VectorIndex conformance suite: every implementation passes the same tests.

Adding an implementation is one line in `IMPLEMENTATIONS`: a name and a function that returns an empty index
(one needing a server returns one on the test server, as the cache and limit store suites do)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from pilothouse.vectors import DimensionMismatch, FloatArray, MemoryVectorIndex, VectorHit, VectorIndex, VectorItem
from pilothouse.vectors.filters import Filter

IMPLEMENTATIONS: dict[str, Callable[[], VectorIndex]] = {
    "memory": MemoryVectorIndex,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def index(request: pytest.FixtureRequest) -> Iterator[VectorIndex]:
    made = IMPLEMENTATIONS[request.param]()
    yield made
    made.clear()


def random_items(n: int, dim: int, seed: int, prefix: str = "v") -> list[VectorItem]:
    """Vectors of random directions and lengths (cosine must not depend on length)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32) * rng.uniform(0.1, 10.0, (n, 1)).astype(np.float32)
    return [VectorItem(f"{prefix}{i}", vectors[i]) for i in range(n)]


def brute_force(items: list[VectorItem], query: FloatArray, k: int, min_score: float = -math.inf) -> list[VectorHit]:
    """Exact cosine top-k, each id once with its best score."""
    q = query / np.linalg.norm(query)
    best: dict[str, float] = {}
    for item in items:
        v = np.asarray(item.vector, dtype=np.float64)
        score = float(v @ q / np.linalg.norm(v))
        if score >= min_score and score > best.get(item.id, -math.inf):
            best[item.id] = score
    ranked = sorted(best.items(), key=lambda pair: -pair[1])[:k]
    return [VectorHit(id=i, score=s) for i, s in ranked]


def assert_same_hits(found: list[VectorHit], expected: list[VectorHit]) -> None:
    assert [h.id for h in found] == [h.id for h in expected]
    assert [h.score for h in found] == pytest.approx([h.score for h in expected], abs=1e-5)


def direction(seed: int, dim: int = 16) -> FloatArray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_empty_index(index: VectorIndex) -> None:
    assert len(index) == 0
    assert index.search(direction(1), k=5) == []
    assert index.search(direction(1), k=5, partition="other") == []
    assert index.remove(["nothing"]) == 0


def test_add_accepts_an_iterator_and_an_empty_batch(index: VectorIndex) -> None:
    index.add([])
    assert len(index) == 0
    index.add(VectorItem(f"g{i}", direction(i)) for i in range(3))
    assert len(index) == 3


@pytest.mark.parametrize("dim", [16, 384])
def test_top_k_is_exact_against_brute_force(index: VectorIndex, dim: int) -> None:
    items = random_items(600, dim, seed=dim)
    index.add(items)
    assert len(index) == 600
    rng = np.random.default_rng(99)
    for trial in range(25):
        query = rng.standard_normal(dim).astype(np.float32) * (trial + 1)
        for k in (1, 5, 40):
            assert_same_hits(index.search(query, k=k), brute_force(items, query, k))


def test_min_score_keeps_only_scores_at_or_above_it(index: VectorIndex) -> None:
    items = random_items(300, 16, seed=3)
    index.add(items)
    query = np.asarray(items[7].vector)
    for min_score in (0.9, 0.5, 0.2, -0.3):
        found = index.search(query, k=1000, min_score=min_score)
        assert_same_hits(found, brute_force(items, query, 1000, min_score))
        assert all(h.score >= min_score - 1e-6 for h in found)
    assert index.search(-query, k=5, min_score=0.999) == []


def test_k_larger_than_the_index_returns_everything_best_first(index: VectorIndex) -> None:
    items = random_items(7, 16, seed=5)
    index.add(items)
    query = direction(6)
    found = index.search(query, k=50)
    assert len(found) == 7
    assert_same_hits(found, brute_force(items, query, 50))


def test_k_must_be_positive(index: VectorIndex) -> None:
    index.add(random_items(3, 16, seed=1))
    with pytest.raises(ValueError, match="k"):
        index.search(direction(1), k=0)


def test_ties_are_all_valid_and_none_is_lost(index: VectorIndex) -> None:
    d = direction(10)
    tied = ["t-a", "t-b", "t-c", "t-d"]
    index.add(VectorItem(name, d * scale) for name, scale in zip(tied, [1.0, 2.0, 0.5, 7.0], strict=True))
    index.add([VectorItem("lower", 0.8 * d + 0.6 * direction(11))])
    for k in (1, 2, 3, 4):
        found = index.search(d, k=k)
        assert len(found) == k and len({h.id for h in found}) == k
        assert {h.id for h in found} <= set(tied)
        assert all(h.score == pytest.approx(1.0, abs=1e-5) for h in found)
    found = index.search(d, k=5)
    assert {h.id for h in found[:4]} == set(tied) and found[4].id == "lower"


def test_scores_are_cosines_in_range(index: VectorIndex) -> None:
    d = direction(20)
    index.add([VectorItem("same", d * 3), VectorItem("opposite", -d), VectorItem("zero", np.zeros(16, np.float32))])
    found = {h.id: h.score for h in index.search(d, k=3)}
    assert found["same"] == pytest.approx(1.0, abs=1e-5) and found["same"] <= 1.0
    assert found["opposite"] == pytest.approx(-1.0, abs=1e-5) and found["opposite"] >= -1.0
    assert found["zero"] == pytest.approx(0.0, abs=1e-6)


def test_cosine_ignores_length_even_at_extremes(index: VectorIndex) -> None:
    d = direction(25)
    index.add([VectorItem("huge", d * np.float32(1e30)), VectorItem("tiny", d * np.float32(1e-30))])
    found = index.search(d * np.float32(1e25), k=2)
    assert {h.id for h in found} == {"huge", "tiny"}
    assert all(h.score == pytest.approx(1.0, abs=1e-5) for h in found)


def test_an_id_added_twice_is_found_once_with_its_best_score(index: VectorIndex) -> None:
    d = direction(30)
    index.add([VectorItem("twice", 0.6 * d + 0.8 * direction(31), text="first")])
    index.add([VectorItem("twice", d, text="second"), VectorItem("other", 0.9 * d + 0.1 * direction(32))])
    found = index.search(d, k=5)
    assert [h.id for h in found] == ["twice", "other"]
    assert found[0].score == pytest.approx(1.0, abs=1e-5) and found[0].text == "second"
    assert len(index) == 3
    assert index.remove(["twice"]) == 2
    assert [h.id for h in index.search(d, k=5)] == ["other"]


def test_removed_ids_are_gone(index: VectorIndex) -> None:
    items = random_items(200, 16, seed=40)
    index.add(items)
    gone = {f"v{i}" for i in range(0, 200, 3)}
    assert index.remove([*sorted(gone), "never-added"]) == len(gone)
    assert len(index) == 200 - len(gone)
    kept = [item for item in items if item.id not in gone]
    rng = np.random.default_rng(41)
    for _ in range(10):
        query = rng.standard_normal(16).astype(np.float32)
        found = index.search(query, k=30)
        assert not gone & {h.id for h in found}
        assert_same_hits(found, brute_force(kept, query, 30))
    assert index.remove(sorted(gone)) == 0


def test_removing_everything_leaves_an_empty_partition(index: VectorIndex) -> None:
    index.add(random_items(5, 16, seed=45))
    assert index.remove([f"v{i}" for i in range(5)]) == 5
    assert len(index) == 0
    assert index.search(direction(1), k=5) == []
    index.add([VectorItem("again", direction(2))])
    assert [h.id for h in index.search(direction(2), k=5)] == ["again"]


def test_partitions_are_isolated(index: VectorIndex) -> None:
    d = direction(50)
    index.add([VectorItem("same-id", d, text="in a")], partition="a")
    index.add([VectorItem("same-id", -d, text="in b"), VectorItem("b-only", d)], partition="b")
    assert len(index) == 3
    assert [(h.id, h.text) for h in index.search(d, k=5, partition="a")] == [("same-id", "in a")]
    in_b = index.search(d, k=5, partition="b")
    assert [h.id for h in in_b] == ["b-only", "same-id"] and in_b[1].text == "in b"
    assert index.search(d, k=5) == []  # the default partition is another one
    assert index.search(d, k=5, partition="c") == []
    assert index.remove(["same-id"], partition="a") == 1
    assert index.search(d, k=5, partition="a") == []
    assert [h.id for h in index.search(-d, k=1, partition="b")] == ["same-id"]
    assert len(index) == 2


def test_text_and_metadata_come_back_with_hits(index: VectorIndex) -> None:
    d = direction(60)
    index.add([VectorItem("doc", d, text="the chunk", metadata={"source": "a.md", "line": 3}), VectorItem("bare", -d)])
    found = index.search(d, k=2)
    assert (found[0].id, found[0].text, dict(found[0].metadata or {})) == (
        "doc",
        "the chunk",
        {"source": "a.md", "line": 3},
    )
    assert (found[1].id, found[1].text, found[1].metadata) == ("bare", "", None)


def test_expired_items_are_not_found(index: VectorIndex) -> None:
    d = direction(70)
    now = time.time()
    index.add(
        [
            VectorItem("expired", d, expires_at=now - 1),
            VectorItem("alive", 0.9 * d + 0.1 * direction(71), expires_at=now + 60),
        ]
    )
    index.add([VectorItem("forever", 0.5 * d + 0.5 * direction(72))])
    assert [h.id for h in index.search(d, k=5)] == ["alive", "forever"]


def test_dimension_mismatch_is_a_clear_error(index: VectorIndex) -> None:
    index.add([VectorItem("a", direction(1, dim=16))])
    with pytest.raises(DimensionMismatch, match="dimension 8 does not fit an index of dimension 16") as raised:
        index.add([VectorItem("b", direction(2, dim=16)), VectorItem("c", direction(3, dim=8))])
    assert (raised.value.got, raised.value.expected) == (8, 16)
    assert len(index) == 1  # nothing of the refused batch was added
    with pytest.raises(DimensionMismatch, match="dimension 8"):
        index.add([VectorItem("d", direction(4, dim=8))], partition="another")
    with pytest.raises(DimensionMismatch, match="dimension 32"):
        index.search(direction(5, dim=32), k=1)
    with pytest.raises(DimensionMismatch):
        index.search(direction(5, dim=32), k=1, partition="unknown")


def test_a_first_batch_of_mixed_dimensions_is_refused(index: VectorIndex) -> None:
    with pytest.raises(DimensionMismatch):
        index.add([VectorItem("a", direction(1, dim=16)), VectorItem("b", direction(2, dim=8))])
    assert len(index) == 0


def test_non_finite_vectors_are_refused(index: VectorIndex) -> None:
    bad = direction(80).copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add([VectorItem("nan", bad)])
    index.add([VectorItem("ok", direction(81))])
    bad[3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.search(bad, k=1)
    assert len(index) == 1


def test_clear_drops_everything(index: VectorIndex) -> None:
    index.add(random_items(10, 16, seed=90), partition="a")
    index.add(random_items(10, 16, seed=91), partition="b")
    index.clear()
    assert len(index) == 0
    assert index.search(direction(1), k=5, partition="a") == []
    assert index.search(direction(1), k=5, partition="b") == []


def _tagged_items(n: int, dim: int, seed: int) -> list[VectorItem]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return [
        VectorItem(
            f"v{i}",
            vectors[i],
            metadata={
                "team": ["a", "b", "c"][i % 3],
                "n": i % 10,
                "acl": ["g:x"] if i % 4 else ["*"],
                "flag": i % 2 == 0,
            },
        )
        for i in range(n)
    ]


def _filtered_brute_force(items: list[VectorItem], query: FloatArray, k: int, where: Filter) -> list[VectorHit]:
    return brute_force([item for item in items if where.matches(item.metadata)], query, k)


FILTERS = [
    Filter(equals={"team": "b"}),
    Filter(equals={"flag": True}),
    Filter(equals={"n": True}),  # a boolean never equals a number
    Filter(one_of={"n": frozenset({1, 2, 3})}, ranges={"n": (2, None)}),
    Filter(any_of={"acl": frozenset({"*"})}),
    Filter(ranges={"n": (None, 0)}),
    Filter(equals={"absent": 1}),
]


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_where_filters_inside_the_search(index: VectorIndex, where: Filter) -> None:
    items = _tagged_items(400, 16, seed=7)
    index.add(items)
    rng = np.random.default_rng(8)
    for _ in range(5):
        query = rng.standard_normal(16).astype(np.float32)
        for k in (1, 10, 500):
            found = index.search(query, k=k, where=where)
            assert_same_hits(found, _filtered_brute_force(items, query, k, where))
    assert index.search(items[0].vector, k=5, where=Filter()) == index.search(items[0].vector, k=5)


def test_where_returns_k_matches_when_the_best_are_rejected(index: VectorIndex) -> None:
    d = direction(90)
    index.add(VectorItem(f"hidden{i}", d + 0.01 * direction(100 + i), metadata={"acl": ["g:b"]}) for i in range(20))
    index.add(VectorItem(f"seen{i}", direction(200 + i), metadata={"acl": ["g:a"]}) for i in range(20))
    index.add([VectorItem("bare", d)])  # no metadata: never matches a condition
    found = index.search(d, k=5, where=Filter(any_of={"acl": frozenset({"g:a"})}))
    assert len(found) == 5 and all(h.id.startswith("seen") for h in found)
    assert index.search(d, k=5, where=Filter(any_of={"acl": frozenset({"g:c"})})) == []
