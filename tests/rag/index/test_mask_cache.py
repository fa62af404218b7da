"""The table's filter masks are kept per filter until the table changes: a kept mask is never handed to another
filter (`Filter.key`), never outlives a change of the rows (access lists edited, chunks added or removed), and
cannot be written by a search (property-based, against `Filter.matches`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilothouse.rag.index.table import ChunkTable
from pilothouse.rag.types import IndexedChunk
from pilothouse.vectors.filters import Filter

from .test_columns import filters, metadata

DIM = 4


def chunk(i: int, meta: dict[str, Any]) -> IndexedChunk:
    return IndexedChunk(f"c{i}", f"text {i}", np.eye(DIM, dtype=np.float32)[i % DIM] + 0.1, meta)


def expected(table: ChunkTable, where: Filter) -> np.ndarray:
    return np.array(
        [table.ids[s] is not None and where.matches(table.metadata[s]) for s in range(table.capacity)], dtype=bool
    )


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(metadata, min_size=1, max_size=10),
    steps=st.lists(
        st.tuples(st.sampled_from(["query", "upsert", "remove"]), st.integers(0, 12), metadata, filters), max_size=12
    ),
    wheres=st.lists(filters, min_size=1, max_size=3),
)
def test_allowed_matches_the_filter_through_changes(
    rows: list[dict[str, Any]], steps: list[tuple[str, int, dict[str, Any], Filter]], wheres: list[Filter]
) -> None:
    table = ChunkTable(DIM)
    table.upsert([chunk(i, meta) for i, meta in enumerate(rows)])
    for action, i, meta, where in steps:
        if action == "upsert":  # a new chunk, or new metadata (an edited access list) for an old one
            table.upsert([chunk(i, meta)])
        elif action == "remove":
            table.remove([f"c{i}"])
        for each in [*wheres, where]:  # asked twice: the second answer comes from the kept mask
            for _ in range(2):
                mask = table.allowed(each)
                assert mask.shape == (table.capacity,)
                assert (mask == expected(table, each)).all()


@settings(max_examples=300, deadline=None)
@given(first=filters, second=filters, rows=st.lists(metadata, min_size=1, max_size=8))
def test_filters_with_one_key_match_the_same_rows(first: Filter, second: Filter, rows: list[dict[str, Any]]) -> None:
    if first.key() == second.key():
        assert [first.matches(m) for m in rows] == [second.matches(m) for m in rows]


def test_key_tells_booleans_from_numbers_and_ignores_order() -> None:
    assert Filter(equals={"a": True}).key() != Filter(equals={"a": 1}).key()
    assert Filter(one_of={"a": frozenset({True})}).key() != Filter(one_of={"a": frozenset({1})}).key()
    assert Filter(ranges={"a": (0, 1)}).key() != Filter(ranges={"a": (False, True)}).key()
    assert Filter(equals={"a": 1, "b": "x"}).key() == Filter(equals={"b": "x", "a": 1}).key()
    assert (
        Filter(any_of={"_acl": frozenset({"*", "g:a"})}).key() == Filter(any_of={"_acl": frozenset({"g:a", "*"})}).key()
    )
    assert Filter(any_of={"_acl": frozenset({"g:a"})}).key() != Filter(any_of={"_acl": frozenset({"g:b"})}).key()
    hash(Filter(equals={"a": 1.5}, one_of={"b": frozenset({"x"})}, ranges={"c": (None, 2.0)}).key())


def test_a_kept_mask_is_read_only_and_follows_an_access_list_change() -> None:
    table = ChunkTable(DIM)
    table.upsert([chunk(0, {"_acl": ["g:a"]}), chunk(1, {"_acl": ["g:b"]})])
    where = Filter(any_of={"_acl": frozenset({"g:a"})})
    mask = table.allowed(where)
    assert mask.tolist()[:2] == [True, False]
    with pytest.raises(ValueError):
        mask[1] = True  # a search cannot widen the next caller's mask
    table.upsert([chunk(0, {"_acl": ["g:b"]}), chunk(1, {"_acl": ["g:a"]})])  # access moved
    assert table.allowed(where).tolist()[:2] == [False, True]
    table.remove(["c1"])
    assert not table.allowed(where).any()
