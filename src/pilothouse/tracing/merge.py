"""One trace, several writers: trace rows are upserted and spans appended, so a trace can be written in parts.

The tracing SDK sends a trace's spans in batches as they end, and a gateway call made with the trace's
`traceparent` writes its own part of the same trace. Each part arrives as a trace row with its spans; the
store keeps one row per trace:

* times: the earliest start and the latest end; status `error` once any part failed;
* tokens and cost: the sum of the parts (the totals of the spans each part added);
* name and source: the SDK's (the application named the trace) over the gateway's; session, user and tags:
  the newest value set; model, prompt and key: the first value set;
* a part for a trace id another project already holds is refused (logged) when it was ingested (SDK, OTLP: the
  sender is told); a gateway call's part is stored under a fresh id in its own project (INGESTED).

Writing the same part twice (an SDK retry whose first answer was lost, a spill replayed after it was stored)
changes nothing: spans already stored are skipped and the totals they carried taken back off the row. A span
id held by another trace, or repeated within the batch, is a clash (IntegrityError): the sink spills that trace.
So is a span whose trace row is not in its part: every span is stored in the transaction that writes its trace
row, which is what the spans table relies on (it has no foreign key to traces since migration 0026, whose
per-row check was the largest cost of the PostgreSQL server per span).
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pilothouse.money import to_pico
from pilothouse.store.ids import new_trace_id
from pilothouse.store.rollups import add_traces as add_to_rollups
from pilothouse.store.search import index_traces
from pilothouse.store.tables import spans, traces
from pilothouse.tracing import span_table

log = logging.getLogger("pilothouse.tracing")
Repeats = Literal["skip", "refuse"]
"""What a span id stored before means: the same part written again (skip it) or a clash (refuse)."""
_METERED = ("llm", "embedding")  # the span kinds a trace's totals sum (TraceRecord.totals)


def merge_rows(trace_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one batch with the same trace id combined into one (a statement may touch a row only once)."""
    merged: dict[str, dict[str, Any]] = {}
    for row in trace_rows:
        have = merged.get(row["id"])
        if have is None:
            merged[row["id"]] = dict(row)
            continue
        sdk_wins = row.get("source") == "sdk" and have.get("source") != "sdk"
        have["started_at"] = min(have["started_at"], row["started_at"])
        ends = [e for e in (have["ended_at"], row["ended_at"]) if e is not None]
        have["ended_at"] = max(ends) if ends else None
        have["input_tokens"] += row["input_tokens"]
        have["output_tokens"] += row["output_tokens"]
        have["cost_usd"] += row["cost_usd"]
        if row["status"] == "error":
            have["status"] = "error"
        if sdk_wins:
            have["name"], have["source"] = row["name"], row["source"]
        for key in ("session_id", "user_id", "tags"):
            if row.get(key) is not None:
                have[key] = row[key]
        for key in ("model", "prompt_name", "prompt_version", "api_key_id"):
            if have.get(key) is None:
                have[key] = row.get(key)
    return list(merged.values())


@dataclass(slots=True)
class Written:
    """What `write_parts` stored: the trace rows and spans (parts refused for naming another project's trace
    left out), and the ids of the traces that were already there (the rows merged into)."""

    traces: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    merged: set[str] = field(default_factory=set)

    def fresh(self) -> list[dict[str, Any]]:
        """The trace rows stored for the first time."""
        return [row for row in self.traces if row["id"] not in self.merged]


def write_parts(
    conn: Connection,
    trace_rows: list[dict[str, Any]],
    span_rows: list[dict[str, Any]],
    *,
    values: list[tuple[Any, ...]] | None = None,
    repeats: Repeats = "skip",
) -> Written:
    """Upsert the trace rows and append their spans (see the module docstring). `values`: the span rows as
    `span_table.encode_all` made them (encoded here when not given; `Unfit` content raises). `repeats="refuse"`
    makes a span stored before a clash too (the spill replay counts such a trace as already stored)."""
    if values is None:
        values = span_table.encode_all(span_rows)
    trace_rows = merge_rows(trace_rows)
    ids = {row["id"] for row in trace_rows}
    if any(row["trace_id"] not in ids for row in span_rows):  # what the spans table relies on (migration 0026)
        raise _clash("a span names a trace that is not part of what was written with it")
    written, merged = _write_trace_rows(conn, trace_rows)
    refused = {row["id"] for row in trace_rows} - written
    pairs = list(zip(span_rows, values, strict=True))
    if refused:
        trace_rows, pairs, refused = _rehome(conn, trace_rows, pairs, refused)
    merged -= refused
    if pairs:
        if len({row["id"] for row, _ in pairs}) < len(pairs):
            raise _clash("a span id appears twice in the batch")
        if merged:
            pairs = _skip_repeats(conn, pairs, merged, repeats)
        # Spans of new traces cannot be stored yet and repeats were taken out: a plain bulk insert (COPY on
        # PostgreSQL); an id another trace holds raises the clash.
        span_table.insert(conn, [value for _, value in pairs])
    return Written(trace_rows, [row for row, _ in pairs], merged)


def store_parts(
    conn: Connection,
    trace_rows: list[dict[str, Any]],
    span_rows: list[dict[str, Any]],
    *,
    values: list[tuple[Any, ...]] | None = None,
    repeats: Repeats = "skip",
) -> Written:
    """`write_parts`, then what every stored part adds in the same transaction: the per-minute and per-hour
    rollups (store/rollups.py: a later part is not another request) and the full-text index (store/search.py:
    a later part's text is added to its trace's). Every trace writer (gateway sink, SDK, OTLP) stores this way."""
    written = write_parts(conn, trace_rows, span_rows, values=values, repeats=repeats)
    add_to_rollups(conn, written.traces, written.spans, merged=written.merged)
    index_traces(conn, written.traces, written.spans, merged=written.merged)
    return written


_CHUNK = 5000
"""Ids per `IN (...)` list: SQLite allows 32,766 bound values per statement."""


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


Pair = tuple[dict[str, Any], tuple[Any, ...]]
"""A span row and its encoded form (tracing/span_table.py)."""


def _skip_repeats(conn: Connection, pairs: list[Pair], merged: set[str], repeats: Repeats) -> list[Pair]:
    """Spans of traces stored before that are stored already (a part written again) taken out, and the totals
    they carried taken back off their trace rows; a span id another trace holds is a clash."""
    candidates = [row["id"] for row, _ in pairs if row["trace_id"] in merged]
    owners = {
        r.id: r.trace_id
        for chunk in _chunks(candidates)
        for r in conn.execute(select(spans.c.id, spans.c.trace_id).where(spans.c.id.in_(chunk)))
    }
    if not owners:
        return pairs
    repeated = [row for row, _ in pairs if row["id"] in owners]
    if any(owners[row["id"]] != row["trace_id"] for row in repeated):
        raise _clash("a span id is already used by another trace")
    if repeats == "refuse":
        raise _clash("spans of this trace are already stored")
    _take_back(conn, repeated)
    return [pair for pair in pairs if pair[0]["id"] not in owners]


def _write_trace_rows(conn: Connection, trace_rows: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """Insert the (merged) trace rows that are new, then merge the others into the stored rows of this project;
    returns (ids written, ids merged into). A row of another project's trace is neither. Most parts are new
    traces (each gateway call, most OTLP requests): one statement; a trace written in parts costs a second."""
    created = _run_trace_statement(conn, "insert", trace_rows)
    later = [row for row in trace_rows if row["id"] not in created]
    if not later:
        return created, set()
    merged = _run_trace_statement(conn, "merge", later)
    return created | merged, merged


def _run_trace_statement(conn: Connection, action: Action, trace_rows: list[dict[str, Any]]) -> set[str]:
    name = conn.dialect.name
    if name == "sqlite" and action == "insert" and all(row.keys() >= _TRACE_KEYS for row in trace_rows):
        return _insert_sqlite(conn, trace_rows)
    if name != "postgresql":
        return {row.id for row in conn.execute(_trace_statement(name, action), trace_rows)}
    # One statement over one JSON parameter (`json_to_recordset`): its text never changes, so the driver parses
    # and prepares it once (a multi-row VALUES list is new text for each batch size), and the rows are encoded by
    # orjson in one call, where one array per column cost the driver a Python call per value (about 2 µs a span).
    rows = orjson.dumps([_json_row(row) for row in trace_rows]).decode()
    return {row.id for row in conn.execute(_trace_statement(name, action), {"t_rows": rows})}


_SQLITE_ROWS = 1000
"""Trace rows per statement on SQLite (17 values each; SQLite allows 32,766 bound values per statement)."""


def _insert_sqlite(conn: Connection, trace_rows: list[dict[str, Any]]) -> set[str]:
    """The "insert" statement on SQLite as one multi-row `INSERT ... RETURNING` through the driver, each value
    through its column's own bind processing (so stored exactly as SQLAlchemy stores it): SQLAlchemy's
    insertmanyvalues built and processed a parameter dict per row, about 1 µs a span more (docs/benchmarks.md)."""
    binds = _sqlite_binds(conn.dialect)
    created: set[str] = set()
    for start in range(0, len(trace_rows), _SQLITE_ROWS):
        chunk = trace_rows[start : start + _SQLITE_ROWS]
        values = [
            value if bind is None else bind(value)
            for row in chunk
            for bind, value in zip(binds, _TRACE_VALUES(row), strict=True)
        ]
        created.update(r[0] for r in conn.exec_driver_sql(_sqlite_insert_text(len(chunk)), tuple(values)))
    return created


@functools.lru_cache(maxsize=32)
def _sqlite_insert_text(rows: int) -> str:
    one = "(" + ", ".join("?" for _ in _TRACE_COLUMNS) + ")"
    return (
        f"INSERT INTO traces ({', '.join(_TRACE_COLUMNS)}) VALUES {', '.join(one for _ in range(rows))} "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    )


_sqlite_bind_cache: list[tuple[Any, ...]] = []


def _sqlite_binds(dialect: Any) -> tuple[Any, ...]:
    """Each trace column's bind processor on SQLite (None: the value goes to the driver as it is), made once:
    they do not depend on the engine (make_engine sets no JSON serializer of its own)."""
    if not _sqlite_bind_cache:
        _sqlite_bind_cache.append(
            tuple(traces.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _TRACE_COLUMNS)
        )
    return _sqlite_bind_cache[0]


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A trace row for `json_to_recordset`: money as pico-dollars, tags as their JSON text (None: JSON null, as
    SQLAlchemy writes it), cast to jsonb in the statement."""
    out = {column: row.get(column) for column in _TRACE_COLUMNS}
    out["cost_usd"] = to_pico(_decimal(out["cost_usd"]))
    out["tags"] = orjson.dumps(out["tags"]).decode()
    return out


Action = Literal["insert", "merge"]
"""`insert`: new trace rows only (a stored id is left alone); `merge`: into the stored row of the same project."""


_TRACE_COLUMNS = tuple(str(c.name) for c in traces.columns if c.name != "content_purged_at")
"""What a trace row (`TraceRecord.row()`) sets (plain `str`s: orjson takes no `quoted_name` as a key)."""
_TRACE_KEYS = frozenset(_TRACE_COLUMNS)
_TRACE_VALUES = operator.itemgetter(*_TRACE_COLUMNS)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def _derived_type(column: Any) -> Any:
    """The type `json_to_recordset` reads a column's value as (money as pico-dollars, JSON as its text)."""
    if column.name == "cost_usd":
        return BigInteger()
    if column.name == "tags" or isinstance(column.type, String):
        # text without a length: a cast to VARCHAR(n) would silently cut an over-long value (a user id of 500
        # characters), where the insert must fail so the trace is repaired and marked (tracing/repair.py)
        return Text()
    return column.type


@functools.cache
def _trace_statement(dialect_name: str, action: Action) -> Any:
    """The trace-row statements of `write_parts`, built once per dialect (building one costs more than running
    it): a multi-row insert on SQLite, an insert from `json_to_recordset` of one JSON array on PostgreSQL."""
    stmt: Any
    least: Any
    greatest: Any
    if dialect_name == "postgresql":
        columns = [traces.c[name] for name in _TRACE_COLUMNS]
        rows = func.json_to_recordset(cast(bindparam("t_rows", type_=Text()), postgresql.JSON))
        derived = rows.table_valued(*(column(c.name, _derived_type(c)) for c in columns))
        table = derived.render_derived(name="r", with_types=True)
        values = [cast(table.c.tags, postgresql.JSONB) if c.name == "tags" else table.c[c.name] for c in columns]
        stmt = postgresql.insert(traces).from_select(list(_TRACE_COLUMNS), select(*values))
        least, greatest = func.least, func.greatest
    else:
        stmt = sqlite.insert(traces)
        least, greatest = func.min, func.max
    if action == "insert":
        return stmt.on_conflict_do_nothing(index_elements=[traces.c.id]).returning(traces.c.id)
    new, old = stmt.excluded, traces.c
    sdk_wins = and_(new.source == "sdk", func.coalesce(old.source, "") != "sdk")
    no_tags = func.coalesce(cast(new.tags, Text), "null") == "null"  # SQL NULL, or JSON null (a None written)
    return stmt.on_conflict_do_update(
        index_elements=[traces.c.id],
        set_={
            "started_at": least(old.started_at, new.started_at),
            "ended_at": greatest(func.coalesce(old.ended_at, new.ended_at), func.coalesce(new.ended_at, old.ended_at)),
            "input_tokens": old.input_tokens + new.input_tokens,
            "output_tokens": old.output_tokens + new.output_tokens,
            "cost_usd": old.cost_usd + new.cost_usd,
            "status": case((or_(old.status == "error", new.status == "error"), "error"), else_=old.status),
            "name": case((sdk_wins, new.name), else_=old.name),
            "source": case((sdk_wins, new.source), else_=old.source),
            "session_id": func.coalesce(new.session_id, old.session_id),
            "user_id": func.coalesce(new.user_id, old.user_id),
            "tags": case((no_tags, old.tags), else_=new.tags),
            "model": func.coalesce(old.model, new.model),
            "prompt_name": func.coalesce(old.prompt_name, new.prompt_name),
            "prompt_version": func.coalesce(old.prompt_version, new.prompt_version),
            "api_key_id": func.coalesce(old.api_key_id, new.api_key_id),
        },
        where=old.project_id == new.project_id,
    ).returning(traces.c.id)


INGESTED = frozenset({"sdk", "otlp"})
"""Sources whose parts name their trace id themselves (SDK batches, OTLP): a part for another project's trace is
refused and reported to the sender. A gateway call that joined such a trace (its caller's `traceparent`) is
stored under a fresh id instead: the call happened and was paid for, so its trace must not be lost."""


def _rehome(
    conn: Connection, trace_rows: list[dict[str, Any]], pairs: list[Pair], refused: set[str]
) -> tuple[list[dict[str, Any]], list[Pair], set[str]]:
    """Drop the refused ingested parts; store refused gateway parts under fresh trace ids."""
    moved = {
        row["id"]: new_trace_id() for row in trace_rows if row["id"] in refused and row.get("source") not in INGESTED
    }
    dropped = refused - set(moved)
    if dropped:
        log.warning("trace ids %s belong to another project; those parts were not stored", sorted(dropped))
    if moved:
        log.warning(
            "trace ids %s belong to another project; the gateway's parts were stored as %s",
            sorted(moved),
            [moved[old] for old in sorted(moved)],
        )
        conn.execute(traces.insert(), [{**row, "id": moved[row["id"]]} for row in trace_rows if row["id"] in moved])
    kept = [
        {**row, "id": moved[row["id"]]} if row["id"] in moved else row for row in trace_rows if row["id"] not in dropped
    ]
    pairs_kept: list[Pair] = []
    for row, value in pairs:
        if row["trace_id"] in moved:
            row = {**row, "trace_id": moved[row["trace_id"]]}
            value = span_table.encode(row)
        if row["trace_id"] not in dropped:
            pairs_kept.append((row, value))
    return kept, pairs_kept, dropped


def _clash(message: str) -> IntegrityError:
    """The error the sink treats as a clash of ids (the trace is spilled, not repaired)."""
    return IntegrityError(message, None, ValueError(message))


def _take_back(conn: Connection, repeated: list[dict[str, Any]]) -> None:
    """Spans already stored were skipped: the totals they added to their trace rows come off again."""
    per_trace: dict[str, list[Any]] = {}
    for row in repeated:
        if row["kind"] not in _METERED:
            continue
        tin, tout, cost = per_trace.setdefault(row["trace_id"], [0, 0, Decimal(0)])
        per_trace[row["trace_id"]] = [
            tin + (row["input_tokens"] or 0),
            tout + (row["output_tokens"] or 0),
            cost + (row["cost_usd"] or 0),
        ]
    for trace_id, (tin, tout, cost) in per_trace.items():
        conn.execute(
            update(traces)
            .where(traces.c.id == trace_id)
            .values(
                input_tokens=traces.c.input_tokens - tin,
                output_tokens=traces.c.output_tokens - tout,
                cost_usd=traces.c.cost_usd - cost,
            )
        )
