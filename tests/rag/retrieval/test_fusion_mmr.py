"""Fusion (RRF, weighted) and MMR on plain lists and arrays."""

from __future__ import annotations

import numpy as np
import pytest

from pilothouse.rag.fusion import fuse, rrf, single, weighted
from pilothouse.rag.mmr import mmr
from pilothouse.vectors.protocol import VectorHit


def hits(*pairs: tuple[str, float]) -> list[VectorHit]:
    return [VectorHit(i, s) for i, s in pairs]


def test_rrf_scores_are_sums_of_reciprocal_ranks() -> None:
    fused = rrf({"dense": hits(("a", 0.9), ("b", 0.8)), "keyword": hits(("b", 12.0), ("c", 3.0))}, k=60)
    scores = {h.id: h.score for h in fused}
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["c"] == pytest.approx(1 / 62)
    assert [h.id for h in fused] == ["b", "a", "c"]
    assert fused[0].sources["dense"].rank == 2 and fused[0].sources["keyword"].score == 12.0


def test_rrf_weights_and_zero_weight_retriever() -> None:
    lists = {"dense": hits(("a", 0.9)), "keyword": hits(("b", 5.0))}
    assert [h.id for h in rrf(lists, weights={"dense": 1.0, "keyword": 2.0})] == ["b", "a"]
    fused = rrf(lists, weights={"dense": 1.0})  # keyword unnamed: weight 0, still listed with its source
    assert fused[0].id == "a" and fused[1].score == 0.0


def test_rrf_ties_break_on_best_single_rank_then_id() -> None:
    fused = rrf({"dense": hits(("x", 1.0), ("y", 0.5)), "keyword": hits(("y", 9.0), ("x", 1.0))})
    assert fused[0].score == fused[1].score
    assert [h.id for h in fused] == ["x", "y"]  # both best at rank 1: id order


def test_weighted_minmax_normalises_each_list() -> None:
    # BM25 scores are far larger than cosines; after min-max both lists span [0, 1].
    lists = {"dense": hits(("a", 0.9), ("b", 0.5), ("c", 0.1)), "keyword": hits(("c", 30.0), ("b", 20.0), ("a", 10.0))}
    fused = {h.id: h.score for h in weighted(lists)}
    assert fused["a"] == pytest.approx(1.0)
    assert fused["b"] == pytest.approx(0.5 + 0.5)
    assert fused["c"] == pytest.approx(1.0)
    keyword_heavy = weighted(lists, weights={"dense": 0.2, "keyword": 0.8})
    assert keyword_heavy[0].id == "c"


def test_weighted_zscore_and_single_item_lists() -> None:
    fused = weighted({"dense": hits(("a", 0.9), ("b", 0.1)), "keyword": hits(("a", 4.0))}, normalisation="zscore")
    assert [h.id for h in fused] == ["a", "b"]
    assert fused[0].score == pytest.approx(1.0 + 1.0)  # z=1 in dense; a one-item list scores it 1
    assert fuse({"dense": []}, method="weighted") == []


def test_fuse_dispatch_and_single() -> None:
    lists = {"dense": hits(("a", 0.9)), "keyword": hits(("a", 3.0))}
    # the defaults: k 30, dense weighted 3 to keyword's 1 (fusion.RRF_WEIGHTS); a request's own weights replace them
    assert fuse(lists, method="rrf")[0].score == pytest.approx(3 / 31 + 1 / 31)
    assert fuse(lists, method="rrf", weights={"dense": 1.0, "keyword": 1.0}, rrf_k=60)[0].score == pytest.approx(2 / 61)
    only = single("keyword", hits(("a", 3.0), ("b", 1.0)))
    assert [(h.id, h.score, h.sources["keyword"].rank) for h in only] == [("a", 3.0, 1), ("b", 1.0, 2)]
    with pytest.raises(ValueError, match="k must be"):
        rrf(lists, k=-1)


def test_mmr_skips_near_duplicates() -> None:
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = np.array([[1.0, 0.1, 0.0], [1.0, 0.11, 0.0], [0.7, 0.0, 0.7]], dtype=np.float32)
    assert mmr(q, vectors, k=3, lam=1.0) == [0, 1, 2]  # pure relevance
    assert mmr(q, vectors, k=2, lam=0.5) == [0, 2]  # the near-copy of 0 gives way
    assert mmr(q, vectors, k=10, lam=0.0)[:1] == [0]  # nothing chosen yet: the most relevant first
    assert mmr(q, np.zeros((0, 3), dtype=np.float32), k=3) == []
    with pytest.raises(ValueError, match="lambda"):
        mmr(q, vectors, k=1, lam=1.5)


def test_mmr_zero_vectors_do_not_crash() -> None:
    q = np.zeros(3, dtype=np.float32)
    assert sorted(mmr(q, np.zeros((2, 3), dtype=np.float32), k=2)) == [0, 1]
