"""Score counters beside the rollups: per hour of trace start, prompt version and score name, how many traces hold
that numeric score and the sum of each trace's mean value of it (`prompt_score_rollups`, migration 0023).

Prompt stats average scores per trace first (a trace scored twice counts once), so a second score of the same
name on a trace does not add a trace: it moves the trace's mean, and `note_score` adds the difference between
the new mean and the old one. `add_score` calls it in the score's own transaction, after locking the trace row
on PostgreSQL, so two scores of one trace written at once are counted one after the other. Only traces of a
prompt version are counted (what prompt stats read).

`score_sums` answers a window exactly: whole hours from the counters, the partial hours at its edges from the
score rows. `rebuild` recounts a window from the rows (for scores written before migration 0023, or after a
restore).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, Connection, and_, cast, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pilothouse.store.prompt_traces import TraceWindow
from pilothouse.store.tables import prompt_score_rollups, scores, traces

__all__ = ["HOUR", "ScoreSum", "note_score", "rebuild", "score_sums"]

HOUR = 3600
_KEY = ("project_id", "prompt_name", "prompt_version", "bucket_start", "name")


class ScoreSum(NamedTuple):
    """The traces of one version and period that hold numeric score `name`: how many, and the sum over them
    of each trace's mean value of it."""

    version: int
    period_start: float
    name: str
    total: float
    traces: int


def _hour(started_at: float) -> float:
    return float(math.floor(started_at / HOUR) * HOUR)


@functools.cache
def _upsert(dialect_name: str) -> Any:
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(prompt_score_rollups)
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={
            "traces": prompt_score_rollups.c.traces + stmt.excluded.traces,
            "total": prompt_score_rollups.c.total + stmt.excluded.total,
        },
    )


def note_score(
    conn: Connection,
    *,
    project_id: str,
    trace_id: str,
    prompt_name: str | None,
    prompt_version: int | None,
    started_at: float,
    name: str,
    value: float,
) -> None:
    """Count a numeric score about to be inserted (call it before the insert, in the same transaction)."""
    if prompt_name is None or prompt_version is None:
        return
    before = conn.execute(
        select(func.coalesce(func.sum(scores.c.value), 0.0), func.count(scores.c.value)).where(
            scores.c.trace_id == trace_id, scores.c.name == name, scores.c.value.is_not(None)
        )
    ).one()
    total, count = float(before[0]), int(before[1])
    new_mean = (total + value) / (count + 1)
    old_mean = total / count if count else 0.0
    row = {
        "project_id": project_id,
        "prompt_name": prompt_name,
        "prompt_version": int(prompt_version),
        "bucket_start": _hour(started_at),
        "name": name,
        "traces": 0 if count else 1,
        "total": new_mean - old_mean,
    }
    conn.execute(_upsert(conn.dialect.name), [row])


def _period_of(dialect: str, seconds: Any, period_s: int) -> ColumnElement[Any]:
    """floor(seconds / period_s) in SQL (SQLite truncates toward zero: the floor for times after 1970)."""
    ratio = seconds / float(period_s)
    if dialect == "postgresql":
        return cast(func.floor(ratio), BigInteger)
    return cast(ratio, BigInteger)


def _period(dialect: str, period_s: int) -> ColumnElement[Any]:
    return _period_of(dialect, traces.c.started_at, period_s)


def _from_rows(conn: Connection, window: TraceWindow, period_s: int) -> Iterator[ScoreSum]:
    """Per (version, period, name) of the window's traces, computed from the score rows in SQL."""
    period = _period(conn.dialect.name, period_s).label("period")
    per_trace = (
        select(
            traces.c.prompt_version.label("version"),
            period,
            scores.c.name.label("name"),
            func.avg(scores.c.value).label("mean"),
        )
        .join(traces, traces.c.id == scores.c.trace_id)
        .where(*window.conditions(), scores.c.project_id == window.project_id, scores.c.value.is_not(None))
        .group_by(traces.c.id, traces.c.prompt_version, period, scores.c.name)
        .subquery()
    )
    query = select(
        per_trace.c.version,
        per_trace.c.period,
        per_trace.c.name,
        func.sum(per_trace.c.mean).label("total"),
        func.count().label("n"),
    ).group_by(per_trace.c.version, per_trace.c.period, per_trace.c.name)
    for r in conn.execute(query):
        yield ScoreSum(int(r.version), float(int(r.period) * period_s), r.name, float(r.total), int(r.n))


def _from_counters(
    conn: Connection, window: TraceWindow, since: float, until: float, period_s: int
) -> Iterator[ScoreSum]:
    """Per (version, period, name) from the hour counters in [since, until) (whole hours)."""
    t = prompt_score_rollups
    where = [
        t.c.project_id == window.project_id,
        t.c.prompt_name == window.prompt_name,
        t.c.bucket_start >= since,
        t.c.bucket_start < until,
    ]
    if window.versions is not None:
        where.append(t.c.prompt_version.in_(window.versions))
    period = _period_of(conn.dialect.name, t.c.bucket_start, period_s).label("period")
    query = (
        select(t.c.prompt_version, period, t.c.name, func.sum(t.c.traces), func.sum(t.c.total))
        .where(*where)
        .group_by(t.c.prompt_version, period, t.c.name)
    )
    for version, period_n, name, count, total in conn.execute(query):
        if count:
            yield ScoreSum(int(version), float(int(period_n) * period_s), name, float(total), int(count))


def score_sums(conn: Connection, window: TraceWindow, period_s: int, *, end: float) -> list[ScoreSum]:
    """Per (version, period, score name) over `window` (its `until`, or `end` when open), exact. `period_s` is a
    whole number of hours (a day for prompt stats)."""
    if period_s % HOUR:
        raise ValueError("period_s must be a whole number of hours")
    until = end if window.until is None else window.until
    first = math.ceil(window.since / HOUR) * HOUR
    last = math.floor(until / HOUR) * HOUR
    parts: list[Iterator[ScoreSum]] = []
    if first >= last:  # under an hour's span: the rows alone
        whole = TraceWindow(window.project_id, window.prompt_name, window.since, until, window.versions)
        parts.append(_from_rows(conn, whole, period_s))
    else:
        parts.append(_from_counters(conn, window, first, last, period_s))
        for lo, hi in ((window.since, first), (last, until)):
            if hi > lo:
                edge = TraceWindow(window.project_id, window.prompt_name, lo, hi, window.versions)
                parts.append(_from_rows(conn, edge, period_s))
    merged: dict[tuple[int, float, str], list[float]] = {}
    for part in parts:
        for s in part:
            sums = merged.setdefault((s.version, s.period_start, s.name), [0.0, 0])
            sums[0] += s.total
            sums[1] += s.traces
    return [ScoreSum(v, p, n, total, int(count)) for (v, p, n), (total, count) in sorted(merged.items())]


def rebuild(
    conn: Connection, *, project_id: str | None = None, since: float | None = None, until: float | None = None
) -> int:
    """Recount the counters of the hours in [since, until) (widened to whole hours) from the score rows, in the
    caller's transaction; returns the number of counter rows written."""
    lo = None if since is None else _hour(since)
    hi = None if until is None else _hour(until) + (HOUR if until % HOUR else 0)
    t = prompt_score_rollups
    gone = delete(t)
    where_t: list[ColumnElement[bool]] = [traces.c.prompt_name.is_not(None), traces.c.prompt_version.is_not(None)]
    if project_id is not None:
        gone = gone.where(t.c.project_id == project_id)
        where_t.append(traces.c.project_id == project_id)
    if lo is not None:
        gone = gone.where(t.c.bucket_start >= lo)
        where_t.append(traces.c.started_at >= lo)
    if hi is not None:
        gone = gone.where(t.c.bucket_start < hi)
        where_t.append(traces.c.started_at < hi)
    conn.execute(gone)
    hour = _period(conn.dialect.name, HOUR).label("hour")
    per_trace = (
        select(
            traces.c.project_id,
            traces.c.prompt_name,
            traces.c.prompt_version,
            hour,
            scores.c.name,
            func.avg(scores.c.value).label("mean"),
        )
        .join(traces, traces.c.id == scores.c.trace_id)
        .where(and_(*where_t), scores.c.value.is_not(None))
        .group_by(traces.c.id, traces.c.project_id, traces.c.prompt_name, traces.c.prompt_version, hour, scores.c.name)
        .subquery()
    )
    p = per_trace.c
    query = select(
        p.project_id, p.prompt_name, p.prompt_version, p.hour, p.name, func.count().label("n"), func.sum(p.mean)
    ).group_by(p.project_id, p.prompt_name, p.prompt_version, p.hour, p.name)
    rows: Sequence[dict[str, Any]] = [
        {
            "project_id": r[0],
            "prompt_name": r[1],
            "prompt_version": int(r[2]),
            "bucket_start": float(int(r[3]) * HOUR),
            "name": r[4],
            "traces": int(r[5]),
            "total": float(r[6]),
        }
        for r in conn.execute(query)
    ]
    stmt = _upsert(conn.dialect.name)
    for start in range(0, len(rows), 500):
        conn.execute(stmt, list(rows[start : start + 500]))
    return len(rows)
