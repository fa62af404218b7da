"""A `Filter` as a Milvus boolean expression over a RAG collection's fields, with `Filter.matches` semantics.

Fields (see milvus.py): `acl` (ARRAY of VARCHAR: the `_acl` tokens), `meta` (JSON: every other metadata key
whose value is not a boolean) and `bools` (JSON: the boolean-valued keys). Milvus compares `true == 1` as
equal inside JSON; `Filter` says a boolean never equals a number, so booleans live in their own field and a
condition on a boolean only looks there, one on a number only in `meta`:
- `equals` / `one_of`: `meta["k"] == v` (numbers and strings) or `bools["k"] == true`, OR-ed over the values;
- `any_of`: `array_contains_any(acl, [...])` for `_acl`, `json_contains_any(meta["k"], [...])` otherwise (a
  key holding a list of strings; anything else never matches);
- `ranges`: `meta["k"] >= low and meta["k"] <= high` (a string or a missing key never compares true).
Keys and strings are written as JSON string literals (escaped), numbers with `repr`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pilothouse.rag.types import ACL_KEY
from pilothouse.vectors.filters import Filter

_NEVER = "false"


def _literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _number(value: float) -> str | None:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return None
    return repr(float(value))


def _path(field: str, key: str) -> str:
    return f"{field}[{_literal(key)}]"


def _equal(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"{_path('bools', key)} == {'true' if value else 'false'}"
    if isinstance(value, str):
        return f"{_path('meta', key)} == {_literal(value)}"
    if isinstance(value, int | float):
        number = _number(value)
        if number is None or math.isinf(float(value)):
            return _NEVER
        return f"{_path('meta', key)} == {number}"
    return _NEVER


def _either(terms: list[str]) -> str:
    terms = [t for t in terms if t != _NEVER]
    if not terms:
        return _NEVER
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"


def _range(path: str, low: float | None, high: float | None) -> str:
    # Like `Filter.matches`: a NaN bound excludes nothing; a bound no finite number passes excludes all.
    if (low is not None and low == math.inf) or (high is not None and high == -math.inf):
        return _NEVER
    bounds = []
    if low is not None and math.isfinite(low):
        bounds.append(f"{path} >= {_number(low)}")
    if high is not None and math.isfinite(high):
        bounds.append(f"{path} <= {_number(high)}")
    # No finite bound: the key must still hold a number.
    return " and ".join(bounds) or f"{path} >= {-1.7976931348623157e308!r}"


def filter_expression(where: Filter | None) -> str:
    """The expression for `where` ("" for no condition)."""
    if where is None or where.is_empty():
        return ""
    terms: list[str] = []
    for key, value in where.equals.items():
        terms.append(_either([_equal(key, value)]))
    for key, values in where.one_of.items():
        terms.append(_either([_equal(key, v) for v in sorted(values, key=repr)]))
    for key, tokens in where.any_of.items():
        listed = "[" + ", ".join(_literal(t) for t in sorted(tokens)) + "]"
        if not tokens:
            terms.append(_NEVER)
        elif key == ACL_KEY:
            terms.append(f"array_contains_any(acl, {listed})")
        else:
            terms.append(f"json_contains_any({_path('meta', key)}, {listed})")
    for key, (low, high) in where.ranges.items():
        terms.append(_range(_path("meta", key), low, high))
    if _NEVER in terms:
        return _NEVER
    return " and ".join(terms)
