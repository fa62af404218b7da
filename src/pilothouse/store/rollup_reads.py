"""Rollup counters grouped by several dimensions and by period (a UTC day): what the cost report and prompt stats
read instead of every trace when a window is large.

The window `[since, until)` is covered the way `rollups.summarise` covers it, so the counts and sums are exact:
whole hours from the hour rows, the partial hours at the edges from minute rows, the partial minutes at the
very edges from the trace rows. A period (a whole number of hours) is folded from the buckets' start times,
which never straddle a period boundary. Percentiles read from the result are histogram estimates
(`Counters.latency_percentile`, `ttft_percentile`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, cast, func, select

from pilothouse.store.rollups import _COUNTERS, _KEY, _TTFT, HOUR, MINUTE, Counters, histogram_percentile
from pilothouse.store.rollups import _from_rows as _counters_from_rows
from pilothouse.store.rollups import _pieces as _window_pieces
from pilothouse.store.tables import trace_rollups, traces

__all__ = ["DIMENSIONS", "GroupKey", "grouped_counters", "open_end", "ttft_percentile"]

DIMENSIONS = {
    "key": "api_key_id",
    "project": "project_id",
    "model": "model",
    "prompt": "prompt_name",
    "version": "prompt_version",
}
"""What rollups can be grouped by (the end user is not among them: too many values to pre-aggregate)."""

GroupKey = tuple[Any, ...]
"""(period start or None, then one value per grouped dimension; None where a trace had none)."""


def ttft_percentile(counters: Counters, q: float) -> float | None:
    """The q-th percentile (0-100) of time to first token from the rollups' histogram (linear within a bucket);
    None with no streamed calls, or when the histogram does not hold them all (rows counted before migration
    0015: `rollups.rebuild` recounts them)."""
    counts = [int(counters.values[name]) for name in _TTFT]
    if sum(counts) != int(counters.values["ttft_count"]):
        return None
    return histogram_percentile(counts, q)


def open_end(conn: Connection, project_ids: Sequence[str] | None) -> float:
    """An `until` for a window left open: past now and past the last hour counted (a trace stamped by a clock
    running ahead is still in it). One index lookup."""
    query = select(func.max(trace_rollups.c.bucket_start)).where(trace_rollups.c.bucket_s == HOUR)
    if project_ids is not None:
        query = query.where(trace_rollups.c.project_id.in_(tuple(project_ids)))
    last = conn.execute(query).scalar()
    return max(time.time(), float(last or 0.0) + HOUR) + MINUTE


def _plain(value: Any) -> Any:
    """Rollup keys store a missing dimension as '' or 0; callers see None, as on the trace rows."""
    return None if value in ("", 0) else value


def _period_start(bucket_start: float, period_s: int | None) -> float | None:
    return None if period_s is None else float(math.floor(bucket_start / period_s) * period_s)


def _period_number(dialect: str, bucket_start: Any, period_s: int) -> Any:
    """floor(bucket_start / period_s) in SQL (bucket starts are never negative: SQLite's truncation is the floor)."""
    ratio = bucket_start / float(period_s)
    return cast(func.floor(ratio), BigInteger) if dialect == "postgresql" else cast(ratio, BigInteger)


LATEST = 253_402_300_799.0
"""9999-12-31T23:59:59Z."""


def grouped_counters(
    conn: Connection,
    project_ids: Sequence[str] | None,
    since: float,
    until: float,
    *,
    by: Sequence[str] = (),
    period_s: int | None = None,
    model: str | None = None,
    prompt_name: str | None = None,
    versions: Sequence[int] | None = None,
) -> dict[GroupKey, Counters]:
    """Counters over `[since, until)` per (period, *dimensions) that the window holds.

    `by`: names from `DIMENSIONS`; `period_s`: None (the whole window) or a whole number of hours (86400: per
    UTC day); `model`, `prompt_name`, `versions`: only those traces (with `versions`, only traces that record a
    prompt version)."""
    unknown = [name for name in by if name not in DIMENSIONS]
    if unknown:
        raise ValueError(f"cannot group rollups by {unknown[0]!r}: choose from {', '.join(DIMENSIONS)}")
    if period_s is not None and (period_s <= 0 or period_s % HOUR):
        raise ValueError("a rollup period is a whole number of hours")
    columns = [DIMENSIONS[name] for name in by]
    out: dict[GroupKey, Counters] = {}
    # no trace is older than the epoch or newer than year 9999: a window past either end reads as clipped to it,
    # so bucket bounds stay within the 64-bit integers the tables hold
    since, until = max(since, 0.0), min(until, LATEST)
    if since >= until:
        return out

    def put(period: float | None, dims: Sequence[Any], values: Mapping[Any, Any]) -> None:
        key = (period, *(_plain(v) for v in dims))
        out.setdefault(key, Counters()).add(values)

    rolled, raw = _window_pieces(since, until, period_s=period_s)
    table = trace_rollups.c
    for grain, lo, hi in rolled:
        where: list[Any] = [table.bucket_s == grain, table.bucket_start >= lo, table.bucket_start < hi]
        if project_ids is not None:
            where.append(table.project_id.in_(tuple(project_ids)))
        if model is not None:
            where.append(table.model == model)
        if prompt_name is not None:
            where.append(table.prompt_name == prompt_name)
        if versions is not None:
            where.append(table.prompt_version.in_(tuple(versions)))
        # periods summed in SQL: a 30-day window per day reads 30 rows per group, not 720 hour rows
        keys = [table[c] for c in columns]
        if period_s is not None:
            keys.append(_period_number(conn.dialect.name, table.bucket_start, period_s).label("period_n"))
        sums = [func.sum(table[name]).label(name) for name in _COUNTERS]
        query = select(*keys, *sums).where(*where)
        if keys:
            query = query.group_by(*keys)
        for row in conn.execute(query):
            values = row._mapping
            period = float(int(values["period_n"]) * period_s) if period_s is not None else None
            put(period, [values[c] for c in columns], values)
    for lo, hi in raw:
        row_where: list[Any] = [traces.c.started_at >= lo, traces.c.started_at < hi]
        if project_ids is not None:
            row_where.append(traces.c.project_id.in_(tuple(project_ids)))
        if model is not None:
            row_where.append(traces.c.model == model)
        if prompt_name is not None:
            row_where.append(traces.c.prompt_name == prompt_name)
        if versions is not None:
            row_where.append(traces.c.prompt_version.in_(tuple(versions)))
        for key, counted in _counters_from_rows(conn, row_where).items():
            if key[1] != HOUR:  # each trace is counted once per grain: keep one grain
                continue
            named = dict(zip(_KEY, key, strict=True))
            put(_period_start(float(named["bucket_start"]), period_s), [named[c] for c in columns], counted)
    return out
