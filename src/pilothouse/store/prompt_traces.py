"""Reading one prompt's traces in a time window: its per-version statistics and its canary checks read these.

A `TraceWindow` names the traces: those of `prompt_name` in one project that record a prompt version, started
at or after `since` (and before `until`), optionally at some versions only. The rows come back as they are
stored; what they mean (error rates, latencies, caller mistakes) is decided in `pilothouse.prompts`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, select

from pilothouse.store.tables import scores, spans, traces


@dataclass(frozen=True, slots=True)
class TraceWindow:
    """Which traces of a prompt a read covers (`until` exclusive; `versions` None: every version)."""

    project_id: str
    prompt_name: str
    since: float
    until: float | None = None
    versions: tuple[int, ...] | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        scope = [
            traces.c.project_id == self.project_id,
            traces.c.prompt_name == self.prompt_name,
            traces.c.started_at >= self.since,
            traces.c.prompt_version.is_not(None),
        ]
        if self.until is not None:
            scope.append(traces.c.started_at < self.until)
        if self.versions is not None:
            scope.append(traces.c.prompt_version.in_(self.versions))
        return scope


class PromptTrace(NamedTuple):
    """One trace of the window, with the columns the statistics need."""

    id: str
    version: int
    status: str
    started_at: float
    ended_at: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal
    user_id: str | None


class TraceScore(NamedTuple):
    """One numeric score of a trace of the window."""

    trace_id: str
    name: str
    value: float


def prompt_traces(conn: Connection, window: TraceWindow) -> Iterator[PromptTrace]:
    """The window's traces (no particular order)."""
    query = select(
        traces.c.id,
        traces.c.prompt_version,
        traces.c.status,
        traces.c.started_at,
        traces.c.ended_at,
        traces.c.input_tokens,
        traces.c.output_tokens,
        traces.c.cost_usd,
        traces.c.user_id,
    ).where(*window.conditions())
    for row in conn.execute(query):
        yield PromptTrace(*row)


def numeric_scores(conn: Connection, window: TraceWindow, name: str | None = None) -> Iterator[TraceScore]:
    """The numeric scores (all names, or only `name`) of the window's traces; string scores are left out."""
    query = (
        select(scores.c.trace_id, scores.c.name, scores.c.value)
        .join(traces, traces.c.id == scores.c.trace_id)
        .where(*window.conditions(), scores.c.project_id == window.project_id, scores.c.value.is_not(None))
    )
    if name is not None:
        query = query.where(scores.c.name == name)
    for row in conn.execute(query):
        yield TraceScore(row.trace_id, row.name, float(row.value))


def failed_span_attributes(conn: Connection, window: TraceWindow) -> Iterator[tuple[str, dict[str, Any]]]:
    """(trace id, attributes) of each failed span of the window's failed traces: what a refusal recorded
    (its HTTP status and error code), to tell a caller's mistake from the version's failure."""
    query = (
        select(spans.c.trace_id, spans.c.attributes)
        .join(traces, traces.c.id == spans.c.trace_id)
        .where(*window.conditions(), traces.c.status == "error", spans.c.status == "error")
    )
    for row in conn.execute(query):
        yield row.trace_id, row.attributes if isinstance(row.attributes, dict) else {}
