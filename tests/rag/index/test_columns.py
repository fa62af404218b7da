"""`MetadataColumns` (the filter masks of the embedded indexes) agree with `Filter.matches` on any metadata and
any filter, through additions, replacements and removals (property-based)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pilothouse.rag.index.columns import MetadataColumns
from pilothouse.vectors.filters import Filter

KEYS = ["a", "b", "c", "_acl"]
TOKENS = ["*", "g:x", "g:y", "u:z"]
scalars = st.one_of(
    st.sampled_from(["x", "y", "1"]),
    st.integers(-2, 2),
    st.sampled_from([0.0, 1.0, 1.5, -2.0]),
    st.booleans(),
)
values = st.one_of(scalars, st.lists(st.sampled_from(TOKENS), max_size=3), st.none())
metadata = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)
bounds = st.one_of(st.none(), st.sampled_from([-1.5, 0, 1, 1.5, float("nan")]))
filters = st.builds(
    Filter,
    equals=st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2),
    one_of=st.dictionaries(st.sampled_from(KEYS), st.frozensets(scalars, max_size=3), max_size=1),
    any_of=st.dictionaries(st.sampled_from(KEYS), st.frozensets(st.sampled_from(TOKENS), max_size=3), max_size=2),
    ranges=st.dictionaries(st.sampled_from(KEYS), st.tuples(bounds, bounds), max_size=1),
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(metadata, min_size=1, max_size=12), later=st.lists(metadata, max_size=6), where=filters)
def test_mask_equals_filter_matches(rows: list[dict[str, Any]], later: list[dict[str, Any]], where: Filter) -> None:
    columns = MetadataColumns()
    held: dict[int, dict[str, Any]] = {}
    for slot, meta in enumerate(rows):
        columns.add(slot, meta)
        held[slot] = meta
    for slot, meta in enumerate(later):  # replace the first few: the old values must stop matching
        if slot in held:
            columns.discard(slot, held[slot])
        columns.add(slot, meta)
        held[slot] = meta
    for slot in list(held)[::3]:  # and remove every third
        columns.discard(slot, held.pop(slot))
    capacity = max(len(rows), len(later))
    mask = columns.mask(where, capacity)
    expected = np.array([slot in held and where.matches(held[slot]) for slot in range(capacity)])
    assert (mask[list(held)] == expected[list(held)]).all()
