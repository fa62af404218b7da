"""BM25 keyword search against bm25s itself: the same scores as its `get_scores` on the same tokens (repeated
query terms included), and the same results whether or not removals left free slots among the live ones."""

from __future__ import annotations

import bm25s  # type: ignore[import-untyped]
import numpy as np
import pytest

from pilothouse.rag.index.bm25 import KeywordIndex, tokenize
from pilothouse.rag.index.table import ChunkTable
from pilothouse.rag.types import IndexedChunk
from pilothouse.vectors.filters import Filter

WORDS = [
    "index",
    "graph",
    "vector",
    "keyword",
    "search",
    "filter",
    "access",
    "group",
    "chunk",
    "score",
    "token",
    "query",
    "rank",
    "fusion",
]


def corpus(n: int, seed: int = 3) -> list[IndexedChunk]:
    rng = np.random.default_rng(seed)
    return [
        IndexedChunk(
            f"c{i}",
            " ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))),
            np.ones(4, dtype=np.float32),
            {"_acl": [f"g:{i % 3}"]},
        )
        for i in range(n)
    ]


QUERIES = ["graph search", "vector vector vector index", "access access group", "fusion rank score token", "zzz"]


@pytest.mark.parametrize("query", QUERIES)
def test_scores_are_bm25s_get_scores(query: str) -> None:
    items = corpus(120)
    table = ChunkTable(4)
    table.upsert(items)
    index = KeywordIndex(table)
    found = index.search(query, 200, table.allowed(None))
    reference = bm25s.BM25(k1=1.5, b=0.75)
    reference.index([list(t) or [""] for t in tokenize([c.text for c in items])], show_progress=False)
    known = [t for t in tokenize([query])[0] if t in reference.vocab_dict]
    if not known:
        assert found == []
        return
    expected = np.asarray(reference.get_scores(known), dtype=np.float64)
    assert {h.id: h.score for h in found} == pytest.approx(
        {f"c{i}": float(s) for i, s in enumerate(expected) if s > 0}, rel=1e-5
    )
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)


def test_free_slots_between_live_ones_give_the_same_results_as_a_fresh_index() -> None:
    items = corpus(90)
    holes = ChunkTable(4)
    holes.upsert(items)
    gone = {f"c{i}" for i in range(0, 90, 4)}
    holes.remove(gone)
    fresh = ChunkTable(4)
    fresh.upsert([c for c in items if c.id not in gone])
    where = Filter(any_of={"_acl": frozenset({"g:1", "g:2"})})
    for query in QUERIES:
        for each in (None, where):
            left = KeywordIndex(holes).search(query, 10, holes.allowed(each))
            right = KeywordIndex(fresh).search(query, 10, fresh.allowed(each))
            assert [h.id for h in left] == [h.id for h in right]
            assert [h.score for h in left] == pytest.approx([h.score for h in right])
            assert not {h.id for h in left} & gone
