"""Monitor series read from the trace rollups (`trace_rollups`, store/rollups.py) instead of one row per trace.

The rollups hold additive counters per minute, hour and UTC day and per model, prompt name and prompt version,
so a series over days reads a few hundred rows, not every trace. They carry these metrics:

- `error_rate`: `errors / requests`, exact (a request and its error are counted on a trace's first part; a
  trace written in several parts whose later part failed counts as failed on the rows only).
- `cost_per_request`: `cost_pico / requests`, exact.
- `latency_mean`, `latency_p50/p95/p99`: of the *successful* traces only (the rollups' latency counters skip
  failed ones, the rows do not), the percentiles estimated from the 12-bucket histogram (`LATENCY_BOUNDS_MS`):
  marked `estimated`.

Not carried: `guard_block_rate` and `cache_hit_rate` (the rollups count guard spans that decided "block" and
cache spans with a known saving, per span; the rows count traces with a guard span in error or with any cache
span), the score metrics and drift. A series reads the rollups only when its scope has no tag or source, it is
grouped by nothing, prompt, prompt version or model, and its buckets and window are whole grains (a day, an
hour or a minute): `rollup_grain` says which grain, or why not.

For a rate each bucket's `total` and `total_sq` are the events (0/1 units: exact). For a mean the rollups hold
no sum of squares: `total_sq` is `total**2 / n`, so the bucket's variance reads 0 (display only; alert rules
read the rows). A percentile bucket holds `value * n` and `value**2 * n`, as the rows' percentiles do.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import BigInteger, Connection, cast, func, select

from pilothouse.monitors.series import Bucket, Metric, Scope, Series
from pilothouse.store.rollups import GRAINS, LATENCY_BOUNDS_MS, histogram_percentile
from pilothouse.store.tables import trace_rollups

__all__ = ["ROLLUP_METRICS", "read_rollup_series", "rollup_grain"]

ROLLUP_METRICS = ("error_rate", "cost_per_request", "latency_mean", "latency_p50", "latency_p95", "latency_p99")
"""The metrics the rollups carry (see the module)."""
_ESTIMATED = ("latency_mean", "latency_p50", "latency_p95", "latency_p99")
"""Read from the successful traces only (and the percentiles from a histogram): not the rows' exact values."""
_LAT = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
_BY = {"prompt": "prompt_name", "model": "model"}


def rollup_grain(
    metric: Metric, scope: Scope, by: str | None, *, start: float, end: float, bucket_s: float
) -> int | str:
    """The rollup grain (seconds) a series can be read in, or the reason it cannot be read from the rollups."""
    if metric.name not in ROLLUP_METRICS:
        return f"the rollups do not carry {metric.name}"
    if scope.tag is not None or scope.source is not None:
        return "the rollups are not kept per tag or source"
    if by not in (None, "prompt", "prompt_version", "model"):
        return f"the rollups cannot be grouped by {by}"
    for grain in sorted(GRAINS, reverse=True):
        if all(float(v) % grain == 0 for v in (bucket_s, start, end)):
            return grain
    return "the buckets and the window's start and end must be whole minutes (or hours, or UTC days)"


def _bucket_number(conn: Connection, start: float, bucket_s: float) -> Any:
    ratio = (trace_rollups.c.bucket_start - start) / bucket_s
    if conn.dialect.name == "postgresql":
        return cast(func.floor(ratio), BigInteger)
    return cast(ratio, BigInteger)  # SQLite truncates toward zero; rows start at or after `start`


def _counted(metric: Metric, sums: dict[str, Any]) -> tuple[int, float, float, float | None]:
    """(n, total, total_sq, value) of one bucket from its summed counters."""
    if metric.name == "error_rate":
        n, events = int(sums["requests"]), float(sums["errors"])
        return n, events, events, events / n if n else None
    if metric.name == "cost_per_request":
        n, total = int(sums["requests"]), float(sums["cost_pico"]) * metric.scale
    elif metric.name == "latency_mean":
        n, total = int(sums["latency_count"]), float(sums["latency_sum_ms"])
    else:
        counts = [int(sums[name]) for name in _LAT]
        n = sum(counts)
        value = histogram_percentile(counts, (metric.quantile or 0.5) * 100.0)
        return n, (value or 0.0) * n, (value or 0.0) ** 2 * n, value
    if not n:
        return 0, 0.0, 0.0, None
    return n, total, total * total / n, total / n


def read_rollup_series(
    conn: Connection,
    project_id: str,
    metric: Metric,
    *,
    start: float,
    end: float,
    bucket_s: float,
    scope: Scope,
    by: str | None,
) -> list[Series]:
    """`read_series` from the rollups (the caller checked the window: `count` buckets of whole grains); raises
    ValueError when `rollup_grain` says the series cannot be read from them."""
    grain = rollup_grain(metric, scope, by, start=start, end=end, bucket_s=bucket_s)
    if isinstance(grain, str):
        raise ValueError(f"{metric.name} cannot be read from the rollups: {grain}")
    table = trace_rollups.c
    where: list[Any] = [
        table.project_id == project_id,
        table.bucket_s == grain,
        table.bucket_start >= start,
        table.bucket_start < end,
    ]
    if scope.prompt is not None:
        where.append(table.prompt_name == scope.prompt)
    if scope.prompt_version is not None:
        where.append(table.prompt_version == scope.prompt_version)
    if scope.model is not None:
        where.append(table.model == scope.model)
    # a missing dimension is stored as '' (a version as 0): the rows leave such traces out of every group
    keys: list[Any] = []
    if by == "prompt_version":
        keys = [table.prompt_name, table.prompt_version]
        where += [table.prompt_name != "", table.prompt_version != 0]
    elif by is not None:
        keys = [table[_BY[by]]]
        where.append(table[_BY[by]] != "")
    names = ("requests", "errors", "cost_pico", "latency_count", "latency_sum_ms", *_LAT)
    index = _bucket_number(conn, start, bucket_s).label("b")
    query = select(index, *keys, *[func.sum(table[name]).label(name) for name in names]).where(*where)
    groups: dict[str | None, dict[int, tuple[int, float, float, float | None]]] = {}
    for row in conn.execute(query.group_by(index, *keys)):
        values = row._mapping
        if by is None:
            group = None
        elif by == "prompt_version":
            group = f"{values['prompt_name']}@{int(values['prompt_version'])}"
        else:
            group = str(values[_BY[by]])
        counted = _counted(metric, dict(values))
        if counted[0]:
            groups.setdefault(group, {})[int(values["b"])] = counted
    if by is None and not groups:
        groups[None] = {}
    count = math.ceil((end - start) / bucket_s)
    estimated = metric.name in _ESTIMATED
    result = []
    for group in sorted(groups, key=lambda v: (v is None, str(v))):
        per_bucket = groups[group]
        buckets = []
        for i in range(count):
            n, total, total_sq, value = per_bucket.get(i, (0, 0.0, 0.0, None))
            buckets.append(Bucket(start + i * bucket_s, n, total, total_sq, value))
        result.append(Series(metric.name, group, bucket_s, buckets, source="rollups", estimated=estimated))
    return result
