"""Per-period sums over one prompt's traces that the rollups do not hold: score means and the failed spans of
failed traces. Prompt stats read these beside the rollups (`prompts/rollout/performance.py`), so a large window
costs the window's scores and failures, not every trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Integer, cast, func, select

from pilothouse.store.prompt_traces import TraceWindow
from pilothouse.store.tables import scores, spans, traces

__all__ = ["FailedSpan", "ScoreSum", "failed_spans", "score_sums"]


class ScoreSum(NamedTuple):
    """The traces of one version and period that hold numeric score `name`: how many, and the sum over them
    of each trace's mean value of it (a trace scored twice counts once)."""

    version: int
    period_start: float
    name: str
    total: float
    traces: int


class FailedSpan(NamedTuple):
    """A failed span of a failed trace of the window, with what its trace is counted under."""

    trace_id: str
    version: int
    started_at: float
    attributes: dict[str, Any]


def _period(dialect: str, period_s: int) -> ColumnElement[Any]:
    ratio = traces.c.started_at / float(period_s)
    if dialect == "postgresql":
        return cast(func.floor(ratio), Integer)
    return cast(ratio, Integer)  # SQLite truncates toward zero: the floor for times after 1970


def score_sums(conn: Connection, window: TraceWindow, period_s: int) -> list[ScoreSum]:
    """Per (version, period, score name): see `ScoreSum`. Computed in SQL."""
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
    return [
        ScoreSum(int(r.version), float(int(r.period) * period_s), r.name, float(r.total), int(r.n))
        for r in conn.execute(query)
    ]


def failed_spans(conn: Connection, window: TraceWindow) -> Iterator[FailedSpan]:
    """The failed spans of the window's failed traces (what a refusal recorded: its HTTP status and error code)."""
    query = (
        select(spans.c.trace_id, traces.c.prompt_version, traces.c.started_at, spans.c.attributes)
        .join(traces, traces.c.id == spans.c.trace_id)
        .where(*window.conditions(), traces.c.status == "error", spans.c.status == "error")
    )
    for row in conn.execute(query):
        attrs = row.attributes if isinstance(row.attributes, dict) else {}
        yield FailedSpan(row.trace_id, int(row.prompt_version), float(row.started_at), attrs)
