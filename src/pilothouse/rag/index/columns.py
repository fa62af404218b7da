"""`MetadataColumns`: a `Filter` turned into a boolean mask over row slots without looking at every row.

Every embedded index (exact, HNSW, BM25) filters inside its search with a mask of the slots that match, so the
mask must be cheap at 100k rows: it is built from inverted indexes (scalar value -> slots, list element ->
slots) and numeric columns (ranges), never from a Python loop over the rows. Results equal
`Filter.matches` on every row (the conformance suite checks it), including its type rules: a boolean never
equals a number, a range never matches a boolean, a missing key never matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.vectors.filters import Filter

BoolArray = npt.NDArray[np.bool_]
SlotArray = npt.NDArray[np.int64]

# Inverted-index keys keep booleans apart from numbers (True == 1 and hash alike in Python; `Filter` says a
# boolean never equals a number).
_ValueKey = tuple[bool, Any]


def _value_key(value: Any) -> _ValueKey | None:
    """The inverted-index key of a scalar, or None for values an equality can never match (lists, NaN, ...)."""
    if isinstance(value, bool):
        return (True, value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str | int | float):
        return (False, value)
    return None


class _Postings:
    """Slots per value, with the slot array of each value cached until it changes."""

    def __init__(self) -> None:
        self.slots: dict[Any, set[int]] = {}
        self._arrays: dict[Any, SlotArray] = {}

    def add(self, value: Any, slot: int) -> None:
        self.slots.setdefault(value, set()).add(slot)
        self._arrays.pop(value, None)

    def discard(self, value: Any, slot: int) -> None:
        held = self.slots.get(value)
        if held is None:
            return
        held.discard(slot)
        if not held:
            del self.slots[value]
        self._arrays.pop(value, None)

    def array(self, value: Any) -> SlotArray:
        cached = self._arrays.get(value)
        if cached is None:
            held = self.slots.get(value, ())
            cached = np.fromiter(held, dtype=np.int64, count=len(held))
            self._arrays[value] = cached
        return cached


class MetadataColumns:
    """Inverted indexes and numeric columns over the metadata of row slots `0 .. capacity-1`."""

    def __init__(self) -> None:
        self._scalars: dict[str, _Postings] = {}  # equals / one_of
        self._elements: dict[str, _Postings] = {}  # any_of over list values
        self._numbers: dict[str, npt.NDArray[np.float64]] = {}  # ranges; NaN: missing or not a number
        self._capacity = 0

    def add(self, slot: int, metadata: Mapping[str, Any]) -> None:
        self._grow(slot + 1)
        for key, value in metadata.items():
            if isinstance(value, list | tuple | set | frozenset):
                postings = self._elements.setdefault(key, _Postings())
                for element in set(value):
                    if isinstance(element, str):
                        postings.add(element, slot)
                continue
            vkey = _value_key(value)
            if vkey is not None:
                self._scalars.setdefault(key, _Postings()).add(vkey, slot)
            if isinstance(value, int | float) and not isinstance(value, bool):
                column = self._numbers.get(key)
                if column is None:
                    column = np.full(self._capacity, np.nan)
                    self._numbers[key] = column
                column[slot] = float(value)

    def discard(self, slot: int, metadata: Mapping[str, Any]) -> None:
        for key, value in metadata.items():
            if isinstance(value, list | tuple | set | frozenset):
                postings = self._elements.get(key)
                if postings is not None:
                    for element in set(value):
                        if isinstance(element, str):
                            postings.discard(element, slot)
                continue
            vkey = _value_key(value)
            if vkey is not None and key in self._scalars:
                self._scalars[key].discard(vkey, slot)
            column = self._numbers.get(key)
            if column is not None and slot < column.size:
                column[slot] = np.nan

    def mask(self, where: Filter, capacity: int) -> BoolArray:
        """True at every slot below `capacity` whose metadata matches `where` (dead slots: callers AND with
        their live mask)."""
        self._grow(capacity)
        mask = np.ones(capacity, dtype=np.bool_)
        for key, value in where.equals.items():
            mask &= self._scalar_mask(key, [value], capacity)
        for key, values in where.one_of.items():
            mask &= self._scalar_mask(key, list(values), capacity)
        for key, tokens in where.any_of.items():
            postings = self._elements.get(key)
            hit = np.zeros(capacity, dtype=np.bool_)
            if postings is not None:
                for token in tokens:
                    hit[postings.array(token)] = True
            mask &= hit
        for key, (low, high) in where.ranges.items():
            column = self._numbers.get(key)
            if column is None:
                return np.zeros(capacity, dtype=np.bool_)
            numbers = column[:capacity]
            with np.errstate(invalid="ignore"):
                inside = ~np.isnan(numbers)
                if low is not None and not math.isnan(low):  # a NaN bound excludes nothing (`Filter.matches`)
                    inside &= numbers >= low
                if high is not None and not math.isnan(high):
                    inside &= numbers <= high
            mask &= inside
        return mask

    def _scalar_mask(self, key: str, values: list[Any], capacity: int) -> BoolArray:
        hit = np.zeros(capacity, dtype=np.bool_)
        postings = self._scalars.get(key)
        if postings is None:
            return hit
        for value in values:
            vkey = _value_key(value)
            if vkey is not None:
                hit[postings.array(vkey)] = True
        return hit

    def _grow(self, capacity: int) -> None:
        if capacity <= self._capacity:
            return
        new_capacity = max(capacity, 2 * self._capacity, 64)
        for key, column in self._numbers.items():
            grown = np.full(new_capacity, np.nan)
            grown[: column.size] = column
            self._numbers[key] = grown
        self._capacity = new_capacity
