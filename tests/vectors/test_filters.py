"""`Filter.matches`: the reference semantics every index reproduces (each backend's suite compares with it)."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.vectors.filters import Filter

META: dict[str, Any] = {
    "lang": "en",
    "year": 2021,
    "score": 0.5,
    "public": True,
    "one": 1,
    "_acl": ["g:a", "u:bob"],
    "tags": ("x", "y"),
    "title": "a title",
}


def stable_id(value: object) -> str:
    """The test id: `repr`, with each set's members sorted. A set of strings iterates in an order that changes
    with the process's hash seed, and pytest-xdist needs every worker to collect the same ids."""
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(stable_id(member) for member in value)) + "}"
    if isinstance(value, Filter):
        parts = {name: getattr(value, name) for name in ("equals", "one_of", "any_of", "ranges")}
        shown = {name: ", ".join(f"{k!r}: {stable_id(v)}" for k, v in part.items()) for name, part in parts.items()}
        return "Filter(" + ", ".join(f"{name}={{{shown[name]}}}" for name in parts) + ")"
    return repr(value)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Filter(), True),
        (Filter(equals={"lang": "en"}), True),
        (Filter(equals={"lang": "de"}), False),
        (Filter(equals={"missing": "en"}), False),
        (Filter(equals={"year": 2021.0}), True),  # numbers compare by value
        (Filter(equals={"public": True}), True),
        (Filter(equals={"public": 1}), False),  # a boolean never equals a number ...
        (Filter(equals={"one": True}), False),  # ... either way round
        (Filter(equals={"one": 1}), True),
        (Filter(one_of={"lang": frozenset({"de", "en"})}), True),
        (Filter(one_of={"lang": frozenset({"de", "fr"})}), False),
        (Filter(one_of={"one": frozenset({True})}), False),
        (Filter(any_of={"_acl": frozenset({"g:b", "u:bob"})}), True),
        (Filter(any_of={"_acl": frozenset({"g:b"})}), False),
        (Filter(any_of={"tags": frozenset({"y"})}), True),  # tuples count as lists
        (Filter(any_of={"title": frozenset({"a title"})}), False),  # a string is not a list of tokens
        (Filter(any_of={"missing": frozenset({"x"})}), False),
        (Filter(ranges={"year": (2020, 2021)}), True),
        (Filter(ranges={"year": (2022, None)}), False),
        (Filter(ranges={"score": (None, 0.5)}), True),
        (Filter(ranges={"score": (None, None)}), True),  # no bounds: the key must hold a number
        (Filter(ranges={"public": (0, 1)}), False),  # never a boolean
        (Filter(ranges={"lang": (None, None)}), False),  # never a string
        (Filter(ranges={"missing": (None, None)}), False),
        (Filter(equals={"lang": "en"}, ranges={"year": (2000, 2030)}, any_of={"_acl": frozenset({"g:a"})}), True),
        (Filter(equals={"lang": "en"}, ranges={"year": (2030, None)}), False),  # a conjunction
    ],
    ids=stable_id,
)
def test_matches(where: Filter, expected: bool) -> None:
    assert where.matches(META) is expected


def test_no_metadata_matches_only_the_empty_filter() -> None:
    assert Filter().matches(None) and Filter().is_empty()
    assert not Filter(equals={"lang": "en"}).matches(None)
    assert not Filter(ranges={"n": (None, None)}).is_empty()
