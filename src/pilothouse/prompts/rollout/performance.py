"""Per-version performance of a prompt over time: calls, error rate, latency, tokens, cost and scores by day.

A window of up to `ROWS_UP_TO` calls (counted from the rollups first) is computed in Python from its trace rows
(one query for traces, one for their numeric scores), so the percentiles are exact and identical on SQLite
and PostgreSQL (`read_from: rows`). A larger window is read from the rollups (`rolled_performance.py`,
`read_from: rollups`): the same counts, sums, error rates and score means, with latency percentiles estimated
from the rollups' histogram, at the cost of the window's rollup rows and score counters.
Latency percentiles cover successful calls (failures are counted by the error rate and are often fast).
Calls a caller mistake ended (a 4xx such as a 422 for a missing variable, `store/caller_errors.py`) are
counted as `caller_errors`, apart from `errors`; the error rate is errors / (calls - caller_errors), so a
client bug does not make a version look broken.
scores are averaged per trace first, so a trace scored twice counts once, and `n` is the number of traces
with that score.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Connection

from pilothouse.errors import NotFound
from pilothouse.money import usd_string
from pilothouse.prompts.registry.lookup import get_label
from pilothouse.prompts.rollout.outcomes import caller_error_traces
from pilothouse.prompts.rollout.rolled_performance import DAY_S, rolled_performance
from pilothouse.store.prompt_traces import TraceWindow, numeric_scores, prompt_traces
from pilothouse.store.prompts import get_prompt
from pilothouse.store.rollup_reads import grouped_counters, open_end

ROWS_UP_TO = 5_000
"""A window with more calls than this is read from the rollups (see the module). Reading 16,000 rows took 2-3 s
at a million traces (SQLite, bench/dashboard_pages.py); the rollups answer in tens of milliseconds."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation between closest ranks), None for no values."""
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values, dtype=float), q)), 3)


@dataclass(slots=True)
class Bucket:
    """The calls of one version in one period."""

    calls: int = 0
    errors: int = 0
    caller_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    scores: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        calls = self.calls
        judged = calls - self.caller_errors
        return {
            "calls": calls,
            "errors": self.errors,
            "caller_errors": self.caller_errors,
            "error_rate": round(self.errors / judged, 6) if judged else None,
            "latency_ms": {
                "p50": percentile(self.latencies_ms, 50),
                "p95": percentile(self.latencies_ms, 95),
                "mean": round(math.fsum(self.latencies_ms) / len(self.latencies_ms), 3) if self.latencies_ms else None,
            },
            "input_tokens_mean": round(self.input_tokens / calls, 3) if calls else None,
            "output_tokens_mean": round(self.output_tokens / calls, 3) if calls else None,
            "cost_total_usd": usd_string(self.cost),
            "cost_per_call_usd": usd_string(self.cost / calls) if calls else None,
            "scores": {
                name: {"mean": round(math.fsum(values) / len(values), 6), "n": len(values)}
                for name, values in sorted(self.scores.items())
            },
        }


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d")


def prompt_performance(
    conn: Connection,
    project_id: str,
    prompt_name: str,
    *,
    since: float,
    until: float | None = None,
    versions: Sequence[int] | None = None,
    rows_up_to: int = ROWS_UP_TO,
) -> dict[str, Any]:
    """Per version (newest first): totals over the window and one entry per UTC day with calls (oldest first).
    Read from the rows up to `rows_up_to` calls, from the rollups beyond (see the module)."""
    window = TraceWindow(project_id, prompt_name, since, until, None if versions is None else tuple(versions))
    header: dict[str, Any] = {"prompt": prompt_name, "since": since, "until": until}
    end = open_end(conn, [project_id]) if until is None else until
    rolled = grouped_counters(
        conn, [project_id], since, end, by=("version",), period_s=DAY_S, prompt_name=prompt_name, versions=versions
    )
    rolled = {key: c for key, c in rolled.items() if key[1] is not None}
    if sum(int(c.values["requests"]) for c in rolled.values()) > rows_up_to:
        return {**header, "read_from": "rollups", "versions": rolled_performance(conn, window, rolled, end=end)}
    totals: dict[int, Bucket] = {}
    days: dict[int, dict[str, Bucket]] = {}
    trace_key: dict[str, tuple[int, str]] = {}
    caller = caller_error_traces(conn, window)
    for row in prompt_traces(conn, window):
        version, day = int(row.version), _day(row.started_at)
        trace_key[row.id] = (version, day)
        for bucket in (totals.setdefault(version, Bucket()), days.setdefault(version, {}).setdefault(day, Bucket())):
            bucket.calls += 1
            bucket.input_tokens += row.input_tokens or 0
            bucket.output_tokens += row.output_tokens or 0
            bucket.cost += row.cost_usd or 0
            if row.id in caller:
                bucket.caller_errors += 1
            elif row.status == "error":
                bucket.errors += 1
            elif row.ended_at is not None:
                bucket.latencies_ms.append((row.ended_at - row.started_at) * 1000.0)
    _add_scores(conn, window, trace_key, totals, days)
    return {
        **header,
        "read_from": "rows",
        "versions": [
            {
                "version": version,
                "total": totals[version].to_dict(),
                "days": [{"day": day, **bucket.to_dict()} for day, bucket in sorted(days[version].items())],
            }
            for version in sorted(totals, reverse=True)
        ],
    }


def prompt_stats(
    conn: Connection,
    project_id: str,
    prompt_name: str,
    *,
    since: float,
    until: float | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """`prompt_performance` of an existing prompt, with `label`: of the versions the label points at now.
    NotFound for an unknown prompt or label."""
    if get_prompt(conn, project_id, prompt_name) is None:
        raise NotFound(f"no prompt {prompt_name!r} in this project; push it with `pilothouse prompt push`")
    versions = None
    if label is not None:
        current = get_label(conn, project_id, prompt_name, label)
        if current is None:
            raise NotFound(f"prompt {prompt_name!r} has no label {label!r}", param="label")
        versions = [int(s["version"]) for s in current.splits]
    result = prompt_performance(conn, project_id, prompt_name, since=since, until=until, versions=versions)
    result["label"] = label
    return result


def _add_scores(
    conn: Connection,
    window: TraceWindow,
    trace_key: dict[str, tuple[int, str]],
    totals: dict[int, Bucket],
    days: dict[int, dict[str, Bucket]],
) -> None:
    """Each trace's mean numeric score per name, added to its version's total and day buckets."""
    per_trace: dict[tuple[str, str], list[float]] = {}
    for score in numeric_scores(conn, window):
        if score.trace_id in trace_key:
            per_trace.setdefault((score.trace_id, score.name), []).append(score.value)
    for (trace_id, name), values in per_trace.items():
        version, day = trace_key[trace_id]
        mean = math.fsum(values) / len(values)
        totals[version].scores.setdefault(name, []).append(mean)
        days[version][day].scores.setdefault(name, []).append(mean)
