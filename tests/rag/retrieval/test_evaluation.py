"""Retrieval metrics and the SMART / qrels readers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pilothouse.rag.evaluation import (
    ndcg_at,
    read_qrels,
    read_smart,
    recall_at,
    reciprocal_rank,
    score_run,
    split_queries,
)


def test_metrics_by_hand() -> None:
    rel = {"a": 1, "c": 1}
    assert recall_at(["a", "b", "c"], rel, 2) == 0.5
    assert reciprocal_rank(["b", "c"], rel) == 0.5
    assert reciprocal_rank(["b"], rel) == 0.0
    assert ndcg_at(["b", "a"], rel, 10) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at(["a", "c"], rel) == pytest.approx(1.0)
    assert ndcg_at(["a", "a", "c"], rel) == pytest.approx(1.0)  # a repeated id counts once
    assert ndcg_at([], rel) == 0.0


def test_score_run_means_over_judged_queries() -> None:
    qrels = {"1": {"a": 1}, "2": {"b": 1, "c": 1}}
    scores = score_run({"1": ["a"], "2": ["x", "b"]}, qrels, recall_ks=(1, 2))
    assert scores.queries == 2
    assert scores.mrr == pytest.approx((1 + 0.5) / 2)
    assert scores.recall == {1: pytest.approx(0.5), 2: pytest.approx(0.75)}
    assert score_run({}, qrels).ndcg_10 == 0.0
    assert score_run({"1": ["a"], "2": ["b"]}, qrels, recall_ks=(10, 10)).recall == {10: pytest.approx(0.75)}
    with pytest.raises(ValueError):
        score_run({}, {})


def test_smart_and_qrels_readers(tmp_path: Path) -> None:
    docs = tmp_path / "docs.all"
    docs.write_text(".I 1\n.T\nA title\n.A\nSmith\n.W\nfirst line\nsecond  line\n.X\n1 2 3\n.I 2\n.W\nonly text\n")
    records = read_smart(docs)
    assert [(r.id, r.title, r.authors, r.text) for r in records] == [
        ("1", "A title", "Smith", "first line second line"),
        ("2", "", "", "only text"),
    ]
    rel = tmp_path / "q.rel"
    rel.write_text("1 5 0 0.0\n1 7 0 0.0\n\n2 9 2\n")
    assert read_qrels(rel) == {"1": {"5": 1, "7": 1}, "2": {"9": 1}}
    assert read_qrels(rel, graded=True) == {"2": {"9": 2}}
    rel.write_text("oops\n")
    with pytest.raises(ValueError, match="expected"):
        read_qrels(rel)


def test_split_is_reproducible_and_disjoint() -> None:
    ids = [str(i) for i in range(10)]
    tune, held = split_queries(ids)
    assert (tune, held) == split_queries(list(reversed(ids)))
    assert not set(tune) & set(held) and len(tune) == 5 and set(tune) | set(held) == set(ids)
