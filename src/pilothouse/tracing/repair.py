"""Storable copies of a trace's rows: the fallback for a trace that the store or the spill file refused.

Span input, output and attributes come from callers and upstreams, and a few shapes break a backend or
orjson (tracing/span_table.py `encode` finds most of them, raising `Unfit`): JSON nested hundreds of levels
deep, values JSON cannot represent, non-string keys, integers past 64 bits, NaN, NUL characters and lone
surrogates, strings longer than their column, token counts past a 32-bit column. `repair_rows` returns copies
every backend and orjson accept, so the trace itself is kept (its odd content capped, and its spans marked
with why) instead of being dropped. It recurses at most `MAX_DEPTH` levels, so it is itself safe on any
input. `describe_error` is the one safe way to put a failure in a log line.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Integer, Table
from sqlalchemy.exc import StatementError

from pilothouse.store.tables import spans, traces

MAX_DEPTH = 128
"""Levels of nesting a stored JSON field may have (the request boundary allows at most 128, `max_json_depth`);
deeper values are replaced by a marker string. Deeper data would also break reading the trace back."""
REPAIRED_ATTRIBUTE = "pilothouse.trace.repaired"
"""Span attribute set on the spans of a repaired trace: why it could not be stored as sent."""

_DEEP = f"[removed: nested deeper than {MAX_DEPTH} levels]"
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_MAX_REPR = 1000


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, truncated; never raises, even for errors whose text cannot be built.

    For SQLAlchemy errors it describes the driver's error, not the statement and its (possibly huge or
    unprintable) parameters."""
    cause: BaseException = exc
    if isinstance(exc, StatementError) and isinstance(exc.orig, BaseException):
        cause = exc.orig
    name = type(cause).__name__
    try:
        text = str(cause)
    except Exception:  # e.g. RecursionError while formatting a deeply nested parameter
        text = ""
    described = f"{name}: {text}" if text else name
    return described if len(described) <= limit else described[:limit] + "..."


def _text(value: str) -> str:
    """A string PostgreSQL, SQLite and orjson all accept: no NUL, no lone surrogates."""
    value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return _text(text[:_MAX_REPR])


def capped_json(value: Any, depth_left: int = MAX_DEPTH) -> Any:
    """`value` as plain JSON data: containers past `depth_left` levels, odd numbers and objects as strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return int(value) if _INT64[0] <= value <= _INT64[1] else str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list | tuple | set | frozenset):
        if depth_left <= 0:
            return _DEEP
        if isinstance(value, dict):
            return {_key(k): capped_json(v, depth_left - 1) for k, v in value.items()}
        return [capped_json(v, depth_left - 1) for v in value]
    return _safe_repr(value)


def _key(key: Any) -> str:
    return _text(key) if isinstance(key, str) else _safe_repr(key)


def _repair_row(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for name, value in row.items():
        column = table.c.get(name)
        if value is None or column is None:
            fixed[name] = value
        elif isinstance(column.type, JSON):
            fixed[name] = capped_json(value)
        elif isinstance(value, str):
            length = getattr(column.type, "length", None)
            fixed[name] = _text(value)[:length] if length else _text(value)
        elif type(column.type) is Integer and isinstance(value, int) and not isinstance(value, bool):
            fixed[name] = min(max(value, _INT32[0]), _INT32[1])
        else:
            fixed[name] = value
    return fixed


def repair_rows(
    trace_row: dict[str, Any], span_rows: list[dict[str, Any]], reason: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Copies of one trace's rows that any backend stores; each span records `reason` in its attributes."""
    fixed_spans = []
    for row in span_rows:
        fixed = _repair_row(spans, row)
        attributes = fixed.get("attributes")
        fixed["attributes"] = {**(attributes if isinstance(attributes, dict) else {}), REPAIRED_ATTRIBUTE: reason}
        fixed_spans.append(fixed)
    return _repair_row(traces, trace_row), fixed_spans
