"""Trace counters per end user, hour and UTC day, so one user's counters over a long window need not read every
one of that user's traces (the Overview filtered by a user).

One row per (project, user, grain, bucket start, key, model, prompt name) holds the rollups' additive counters
(`rollups._COUNTERS`, counted per trace by the same rule, `rollups._trace_counters`); grains are the hour and
the UTC day only (no minute rows: two rows per trace at most, to keep the write cost down), and no prompt
version. Only traces that name a user add rows. `rollups.add_traces` calls `add` for every stored batch in the
same transaction, so a committed trace is counted once; the upsert is `counter = counter + excluded.counter`, in
key order (no deadlocks between concurrent writers), as for the rollups. A trace written in parts
(tracing/merge.py) is counted as the rollups count it: each part under the user it names, a later part adding its
tokens, cost and spans but not another request, so a part that names no user is not counted for the user the
trace's row ends up with.

`summarise_user` reads a window `[since, until)`: whole UTC days from the day rows, whole hours from the hour
rows (with a period, only the grains that divide it), and what is left, under an hour at each edge, from the
user's trace rows (`user_activity.user_activity`, which reads the same counters from rows). It returns what
`user_activity` over the whole window returns (the same counters; the llm-call speed, time-to-first-token and
caller-mistake counters are not read: 0).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, cast, delete, func, select, union_all

from pilothouse.store.rollups import _COUNTERS, _LAT, _SPAN_COLS, Counters, _pieces, _trace_counters
from pilothouse.store.tables import projects, spans, traces, user_rollups
from pilothouse.store.user_activity import UserActivity, user_activity

__all__ = ["GRAINS", "READ_COUNTERS", "add", "rebuild", "summarise_user"]

HOUR, DAY = 3600, 86_400
GRAINS = (HOUR, DAY)
_KEY = ("project_id", "user_id", "bucket_s", "bucket_start", "api_key_id", "model", "prompt_name")
READ_COUNTERS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_pico",
    "latency_count",
    "latency_sum_ms",
    *_LAT,
    "cache_hits",
    "cache_saved_pico",
    "guard_blocks",
)
"""The counters `summarise_user` reads: those `user_activity` counts from rows."""
LATEST = 253_402_300_799.0
"""9999-12-31T23:59:59Z: a window past it reads as clipped to it (bucket bounds stay 64-bit integers)."""

Accumulated = dict[tuple[Any, ...], dict[str, float]]
_CHUNK = 500
"""Rows per executemany."""


def _accumulate(
    into: Accumulated, trace: Mapping[Any, Any], trace_spans: Iterable[Mapping[Any, Any]], *, first_part: bool
) -> None:
    """Add one trace to its hour row (`_with_days` derives the day rows from the hour rows)."""
    counters = _trace_counters(trace, trace_spans, first_part=first_part)
    started = float(trace["started_at"])
    key = (
        trace["project_id"],
        trace["user_id"],
        HOUR,
        float(math.floor(started / HOUR) * HOUR),
        trace["api_key_id"] or "",
        trace["model"] or "",
        trace["prompt_name"] or "",
    )
    row = into.get(key)
    if row is None:
        into[key] = counters
    else:
        for name, value in counters.items():
            if value:
                row[name] += value


def _with_days(hours: Accumulated) -> Accumulated:
    """The hour rows and the day rows they sum to."""
    out = dict(hours)
    for (project_id, user_id, _, start, *dims), counters in hours.items():
        key = (project_id, user_id, DAY, float(math.floor(start / DAY) * DAY), *dims)
        row = out.get(key)
        if row is None:
            out[key] = dict(counters)
        else:
            for name, value in counters.items():
                if value:
                    row[name] += value
    return out


_NAMES = (*_KEY, *_COUNTERS)


@functools.cache
def _upsert_sql(paramstyle: str) -> str:
    """The counters' upsert (the same text on SQLite and PostgreSQL but for the placeholders), built once per
    dialect. Run as driver SQL with tuples: Core's per-row parameter processing would cost more than the rows."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[paramstyle]  # SQLite; psycopg
    return (
        f"INSERT INTO user_rollups ({', '.join(_NAMES)}) VALUES ({', '.join(mark for _ in _NAMES)})"
        f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
        + ", ".join(f"{name} = user_rollups.{name} + excluded.{name}" for name in _COUNTERS)
    )


def _upsert(conn: Connection, rows: Accumulated) -> None:
    if not rows:
        return
    values = [(*key, *(counters[name] for name in _COUNTERS)) for key, counters in sorted(rows.items())]
    sql = _upsert_sql(conn.dialect.paramstyle)
    for start in range(0, len(values), _CHUNK):
        conn.exec_driver_sql(sql, values[start : start + _CHUNK])


def add(
    conn: Connection,
    trace_rows: Sequence[Mapping[Any, Any]],
    span_rows: Sequence[Mapping[Any, Any]],
    *,
    merged: Collection[str] = (),
) -> None:
    """Count the stored trace parts that name a user (rows as `TraceRecord.row()` makes them) in the caller's
    transaction; `merged`: the ids of traces stored before (these rows are later parts: not new requests)."""
    named = {t["id"] for t in trace_rows if t.get("user_id")}
    if not named:
        return
    by_trace: dict[str, list[Mapping[Any, Any]]] = {}
    for s in span_rows:
        if s["trace_id"] in named:
            by_trace.setdefault(s["trace_id"], []).append(s)
    rows: Accumulated = {}
    for t in trace_rows:
        if t["id"] in named:
            _accumulate(rows, t, by_trace.get(t["id"], ()), first_part=t["id"] not in merged)
    _upsert(conn, _with_days(rows))


_TRACE_COLS = (
    traces.c.id,
    traces.c.project_id,
    traces.c.user_id,
    traces.c.api_key_id,
    traces.c.model,
    traces.c.prompt_name,
    traces.c.status,
    traces.c.started_at,
    traces.c.ended_at,
    traces.c.input_tokens,
    traces.c.output_tokens,
    traces.c.cost_usd,
)


def rebuild(
    conn: Connection,
    *,
    project_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    chunk: int = 5000,
) -> int:
    """Recompute the user rollups of `[since, until)` (whole UTC days: callers widen the window, as
    `rollups.rebuild` does, which calls this in its transaction) from the trace rows; returns the traces counted."""
    gone = delete(user_rollups)
    where: list[Any] = [traces.c.user_id.is_not(None), traces.c.user_id != ""]
    if project_id is not None:
        gone = gone.where(user_rollups.c.project_id == project_id)
        where.append(traces.c.project_id == project_id)
    if since is not None:
        gone = gone.where(user_rollups.c.bucket_start >= since)
        where.append(traces.c.started_at >= since)
    if until is not None:
        gone = gone.where(user_rollups.c.bucket_start < until)
        where.append(traces.c.started_at < until)
    conn.execute(gone)
    counted, last = 0, ""
    while True:
        query = select(*_TRACE_COLS).where(*where, traces.c.id > last).order_by(traces.c.id).limit(chunk)
        page = [r._mapping for r in conn.execute(query)]
        if not page:
            return counted
        wanted = spans.c.kind.in_(("llm", "guard", "cache")) | (spans.c.status == "error")
        by_trace: dict[str, list[Mapping[Any, Any]]] = {}
        ids = [t["id"] for t in page]
        for s in conn.execute(select(*_SPAN_COLS).where(spans.c.trace_id.in_(ids), wanted)):
            by_trace.setdefault(s.trace_id, []).append(s._mapping)
        rows: Accumulated = {}
        for t in page:
            _accumulate(rows, t, by_trace.get(t["id"], ()), first_part=True)
        _upsert(conn, _with_days(rows))
        counted += len(page)
        last = page[-1]["id"]


def _period_number(dialect: str, bucket_start: Any, period_s: int) -> Any:
    """floor(bucket_start / period_s) in SQL (bucket starts are never negative: SQLite's truncation is the floor)."""
    ratio = bucket_start / float(period_s)
    return (cast(func.floor(ratio), BigInteger) if dialect == "postgresql" else cast(ratio, BigInteger)).label("pn")


def summarise_user(
    conn: Connection,
    project_ids: Sequence[str] | None,
    user_id: str,
    since: float,
    until: float,
    *,
    period_s: int | None = None,
    model: str | None = None,
    prompt_name: str | None = None,
    api_key_id: str | None = None,
) -> UserActivity:
    """The counters of `user_id`'s traces in `[since, until)` per period of `period_s` seconds (or one for the whole
    window), optionally only those of a model, a prompt and an API key: what `user_activity` returns, read from the
    user rollups but for the partial hours at the edges (see the module). `spans_counted` is False only when an
    edge holds more than `user_activity.SPAN_READ_MAX` requests."""
    if period_s is not None and period_s <= 0:
        raise ValueError("a period is a positive number of seconds")
    out = UserActivity()
    since, until = max(since, 0.0), min(until, LATEST)
    if since >= until:
        return out
    if project_ids is None:  # named one by one, so the project-first key drives the read
        project_ids = list(conn.execute(select(projects.c.id).order_by(projects.c.id)).scalars())
    rolled, raw = _pieces(since, until, period_s=period_s, grains=GRAINS)
    table = user_rollups.c
    if rolled:  # one statement: a range of the table's key per piece (UNION ALL: SQLite would not range an OR)
        where: list[Any] = [table.project_id.in_(tuple(project_ids)), table.user_id == user_id]
        if model is not None:
            where.append(table.model == model)
        if prompt_name is not None:
            where.append(table.prompt_name == prompt_name)
        if api_key_id is not None:
            where.append(table.api_key_id == api_key_id)
        columns = [table.bucket_start, *(table[name] for name in READ_COUNTERS)]
        ranges = [
            select(*columns).where(*where, table.bucket_s == grain, table.bucket_start >= lo, table.bucket_start < hi)
            for grain, lo, hi in rolled
        ]
        found = union_all(*ranges).subquery() if len(ranges) > 1 else ranges[0].subquery()
        keys = [] if period_s is None else [_period_number(conn.dialect.name, found.c.bucket_start, period_s)]
        query = select(*keys, *(func.sum(found.c[name]).label(name) for name in READ_COUNTERS))
        if keys:
            query = query.group_by(*keys)
        for row in conn.execute(query):
            values = row._mapping
            if values["requests"] is None:
                continue  # the whole-window aggregate of no rows
            period = None if period_s is None else float(int(values["pn"]) * period_s)
            counted = dict.fromkeys(_COUNTERS, 0) | {name: values[name] for name in READ_COUNTERS}
            out.periods.setdefault(period, Counters()).add(counted)
    for lo, hi in raw:
        edge = user_activity(
            conn,
            project_ids,
            user_id,
            lo,
            hi,
            period_s=period_s,
            model=model,
            prompt_name=prompt_name,
            api_key_id=api_key_id,
        )
        out.spans_counted = out.spans_counted and edge.spans_counted
        for period, counters in edge.periods.items():
            out.periods.setdefault(period, Counters()).add(counters.values)
    return out
