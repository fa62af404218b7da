"""Spans into the `spans` table fast: values encoded once, then one bulk statement per batch.

The trace writers (the gateway's sink, SDK batches, OTLP ingest) store thousands of spans a second, and going
through SQLAlchemy's per-row bind processing (a `json.dumps` per JSON column, the `Money` conversion, a dict
per row) cost more than the database itself. Here a span row (`SpanRecord.row()`) becomes a tuple once:
JSON columns encoded with orjson (which also finds content no store would take: `encode` raises `Unfit` and the
caller repairs the trace, tracing/repair.py), money as pico-dollars, as the `Money` column stores it. Then:

* SQLite: the driver's `executemany` of one prepared `INSERT`;
* PostgreSQL: `COPY spans (...) FROM STDIN` (psycopg), the fastest way into a table, in the caller's
  transaction like any other statement.

Both are plain inserts: a span id stored before raises an `IntegrityError` (the caller decides what a repeat
means, tracing/merge.py). The stored form is the one SQLAlchemy writes: JSON `null` for a None input, output
or attributes (the column's `none_as_null=False`), so readers cannot tell the two paths apart.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from pilothouse.json_depth import brackets_within, nesting_exceeds
from pilothouse.money import to_pico
from pilothouse.store.tables import spans
from pilothouse.tracing.repair import MAX_DEPTH

__all__ = ["COLUMNS", "Unfit", "encode", "encode_all", "insert"]

COLUMNS: tuple[str, ...] = tuple(column.name for column in spans.columns)
"""The `spans` table's columns, in table order: the order of an encoded row."""
_JSON = frozenset(name for name in COLUMNS if name in ("attributes", "input", "output"))
_NULL = "null"
_OPTIONS = orjson.OPT_NON_STR_KEYS
_INSERT_SQLITE = f"INSERT INTO spans ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
_COPY_POSTGRESQL = f"COPY spans ({', '.join(COLUMNS)}) FROM STDIN"


class Unfit(ValueError):
    """A span whose JSON content no store would take as it is; the message says which field and why."""


def _json(name: str, value: Any) -> str:
    if value is None:
        return _NULL
    try:
        raw = orjson.dumps(value, option=_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError: odd objects, integers past 64 bits, lone surrogates
        raise Unfit(f"{name}: {type(exc).__name__}: {exc}") from None
    if not brackets_within(raw, MAX_DEPTH) and nesting_exceeds(value, MAX_DEPTH):
        raise Unfit(f"{name}: JSON nested deeper than {MAX_DEPTH} levels")
    return raw.decode()


def _money(value: Any) -> int | None:
    if value is None:
        return None
    return to_pico(value if isinstance(value, Decimal) else Decimal(str(value)))


_JSON_AT = tuple((i, name) for i, name in enumerate(COLUMNS) if name in _JSON)
_MONEY_AT = COLUMNS.index("cost_usd")
_FLAG_AT = COLUMNS.index("usage_estimated")


_ALL = operator.itemgetter(*COLUMNS)


def encode(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """One span row as the table stores it (COLUMNS order); raises `Unfit` for content no store would take."""
    try:
        values = list(_ALL(row))  # a full row (`SpanRecord.row()`): every column in one C call
    except KeyError:
        values = [row.get(name) for name in COLUMNS]
    for i, name in _JSON_AT:
        values[i] = _json(name, values[i])
    values[_MONEY_AT] = _money(values[_MONEY_AT])
    if values[_FLAG_AT] is None:
        values[_FLAG_AT] = False
    return tuple(values)


def encode_all(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """`encode` of each row; raises `Unfit` on the first that cannot be stored as it is."""
    return [encode(row) for row in rows]


def insert(conn: Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert encoded span rows in the caller's transaction, in one bulk statement. Errors are SQLAlchemy's
    (`IntegrityError` for an id stored before, a lost connection invalidated), as for any statement."""
    if not values:
        return
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(_INSERT_SQLITE, list(values))  # the driver's executemany, no per-row processing
        return
    import psycopg  # only PostgreSQL stores need the driver (and the CLI starts faster without it)

    dbapi = conn.connection.dbapi_connection
    raw = cast("psycopg.Connection[Any]", dbapi)
    try:
        with raw.cursor() as cursor, cursor.copy(_COPY_POSTGRESQL) as copy:
            for row in values:
                copy.write_row(row)
    except psycopg.Error as exc:
        lost = conn.dialect.is_disconnect(cast(Any, exc), dbapi, None)
        if lost:
            conn.invalidate(exc)
        error = DBAPIError.instance(
            _COPY_POSTGRESQL, None, exc, psycopg.Error, dialect=conn.dialect, connection_invalidated=lost
        )
        raise error from exc
