"""Metadata filters applied inside an index search (pre-filtering): a hit that does not match is never scored
into the top k, so a filtered search returns the best k among the matching items, not fewer.

A `Filter` is a conjunction; every named key must be present in an item's metadata and satisfy its condition:
- `equals`: `metadata[key] == value`;
- `one_of`: `metadata[key]` is one of the values;
- `any_of`: `metadata[key]` is a list of strings sharing at least one value with the given set (RAG access
  lists: an item's `_acl` tokens against the caller's tokens, see `pilothouse.rag.types`);
- `ranges`: `low <= metadata[key] <= high` for numbers (either bound may be None).

Every backend (NumPy, HNSW, Milvus, BM25) gives the same answer as `Filter.matches` on the same items; the
conformance suites check that.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Filter:
    """A conjunction of conditions on an item's metadata (see the module docstring)."""

    equals: Mapping[str, Scalar] = field(default_factory=dict)
    one_of: Mapping[str, frozenset[Scalar]] = field(default_factory=dict)
    any_of: Mapping[str, frozenset[str]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.equals or self.one_of or self.any_of or self.ranges)

    def key(self) -> Hashable:
        """A hashable value equal for two filters only when they hold the same conditions with values of the
        same types (so `True` and `1`, which Python finds equal, give different keys): what an index caches
        a filter's row mask under."""
        return (
            tuple(sorted((k, _typed(v)) for k, v in self.equals.items())),
            tuple(sorted((k, frozenset(_typed(v) for v in values)) for k, values in self.one_of.items())),
            tuple(sorted((k, frozenset(_typed(v) for v in tokens)) for k, tokens in self.any_of.items())),
            tuple(sorted((k, (_typed(low), _typed(high))) for k, (low, high) in self.ranges.items())),
        )

    def matches(self, metadata: Mapping[str, Any] | None) -> bool:
        """The reference semantics every backend reproduces."""
        meta = metadata or {}
        for key, value in self.equals.items():
            if key not in meta or not _same(meta[key], value):
                return False
        for key, values in self.one_of.items():
            if key not in meta or not any(_same(meta[key], v) for v in values):
                return False
        for key, tokens in self.any_of.items():
            held = meta.get(key)
            if not isinstance(held, list | tuple | frozenset | set) or not tokens.intersection(held):
                return False
        for key, (low, high) in self.ranges.items():
            number = meta.get(key)
            if isinstance(number, bool) or not isinstance(number, int | float):
                return False
            if (low is not None and number < low) or (high is not None and number > high):
                return False
        return True


def _typed(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def _same(held: Any, wanted: Scalar) -> bool:
    # True == 1 in Python; a filter on a boolean must not match the number 1, nor a number match a boolean.
    if isinstance(wanted, bool) or isinstance(held, bool):
        return type(held) is type(wanted) and held == wanted
    return bool(held == wanted)
