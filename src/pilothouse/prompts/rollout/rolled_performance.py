"""Prompt stats from the rollups: what `performance.prompt_performance` answers with when a window holds more
calls than it reads row by row (`performance.ROWS_UP_TO`).

Calls, errors, caller mistakes, tokens and cost per version and UTC day come from the per-minute and per-hour
rollups (exact: `store.rollup_reads`), and score means from the score counters beside them
(`store.score_rollups`: whole hours from the counters, the window's partial edge hours from the rows), so a long
window reads neither its traces nor its scores one by one.
What differs from the row-based answer:
- latency p50 and p95 are estimates from the rollups' histogram (bounds `store.rollups.LATENCY_BOUNDS_MS`),
  linear within the bucket the percentile falls in; the mean is exact;
- latency covers calls with status `ok` (the row-based answer also counts `unknown_outcome` calls, recovered
  after a crash, which the rollups do not time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from pilothouse.money import from_pico, usd_string
from pilothouse.store.prompt_traces import TraceWindow
from pilothouse.store.rollup_reads import GroupKey
from pilothouse.store.rollups import Counters
from pilothouse.store.score_rollups import score_sums

__all__ = ["DAY_S", "rolled_performance"]

DAY_S = 86_400


@dataclass(slots=True)
class RolledBucket:
    """The calls of one version in one day (or the whole window), from the rollups plus the uncounted parts."""

    counters: Counters = field(default_factory=Counters)
    scores: dict[str, list[float]] = field(default_factory=dict)  # name -> [sum of trace means, traces]

    def add_score(self, name: str, total: float, n: int) -> None:
        sums = self.scores.setdefault(name, [0.0, 0.0])
        sums[0] += total
        sums[1] += n

    def to_dict(self) -> dict[str, Any]:
        v = self.counters.values
        calls, caller_errors = int(v["requests"]), int(v["caller_errors"])
        errors = int(v["errors"]) - caller_errors
        judged = calls - caller_errors
        cost = from_pico(int(v["cost_pico"]))
        timed = v["latency_count"]
        return {
            "calls": calls,
            "errors": errors,
            "caller_errors": caller_errors,
            "error_rate": round(errors / judged, 6) if judged else None,
            "latency_ms": {
                "p50": self.counters.latency_percentile(50),
                "p95": self.counters.latency_percentile(95),
                "mean": round(v["latency_sum_ms"] / timed, 3) if timed else None,
            },
            "input_tokens_mean": round(v["input_tokens"] / calls, 3) if calls else None,
            "output_tokens_mean": round(v["output_tokens"] / calls, 3) if calls else None,
            "cost_total_usd": usd_string(cost),
            "cost_per_call_usd": usd_string(cost / calls) if calls else None,
            "scores": {
                name: {"mean": round(total / n, 6), "n": int(n)} for name, (total, n) in sorted(self.scores.items())
            },
        }


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d")


def rolled_performance(
    conn: Connection, window: TraceWindow, counters: Mapping[GroupKey, Counters], *, end: float
) -> list[dict[str, Any]]:
    """The `versions` of a prompt stats answer from `counters` (per (day start, version), as
    `rollup_reads.grouped_counters(..., by=("version",), period_s=DAY_S)` returns them, versions only); `end`:
    where an open window ends."""
    totals: dict[int, RolledBucket] = {}
    days: dict[int, dict[float, RolledBucket]] = {}

    def buckets(version: int, day: float) -> tuple[RolledBucket, RolledBucket]:
        return totals.setdefault(version, RolledBucket()), days.setdefault(version, {}).setdefault(day, RolledBucket())

    for (day, version), c in counters.items():
        for bucket in buckets(int(version), float(day)):
            bucket.counters.add(c.values)
    if not totals:
        return []
    # the versions the rollups saw, named: the (project, prompt, version, start) index then serves the edge reads
    window = replace(window, versions=tuple(sorted(totals)))
    for s in score_sums(conn, window, DAY_S, end=end):
        if s.version in totals:
            for bucket in buckets(s.version, s.period_start):
                bucket.add_score(s.name, s.total, s.traces)
    return [
        {
            "version": version,
            "total": totals[version].to_dict(),
            "days": [{"day": _day(day), **bucket.to_dict()} for day, bucket in sorted(days[version].items())],
        }
        for version in sorted(totals, reverse=True)
    ]
