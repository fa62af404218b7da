"""Scores: feedback, evaluation results and code checks attached to a trace (and optionally one of its spans).

A score is numeric (`value`) or categorical (`string_value`), never both. Rows are append-only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import Connection, and_, insert, or_, select

from pilothouse.store.ids import new_id
from pilothouse.store.tables import scores, spans, traces
from pilothouse.store.traces import decode_cursor, encode_cursor

Source = Literal["human", "code", "judge"]
SOURCES: tuple[str, ...] = get_args(Source)


class ScoreTargetMissing(LookupError):
    """The trace (or span) to score is not in the project; the message names it, `param` the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Score:
    id: str
    project_id: str
    trace_id: str
    span_id: str | None
    name: str
    value: float | None
    string_value: str | None
    source: str
    comment: str | None
    author: str | None
    eval_run_id: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "name": self.name,
            "value": self.value,
            "string_value": self.string_value,
            "source": self.source,
            "comment": self.comment,
            "author": self.author,
            "eval_run_id": self.eval_run_id,
            "created_at": self.created_at,
        }


def _row(row: Any) -> Score:
    return Score(
        id=row.id,
        project_id=row.project_id,
        trace_id=row.trace_id,
        span_id=row.span_id,
        name=row.name,
        value=row.value,
        string_value=row.string_value,
        source=row.source,
        comment=row.comment,
        author=row.author,
        eval_run_id=row.eval_run_id,
        created_at=row.created_at,
    )


def add_score(
    conn: Connection,
    *,
    project_id: str,
    trace_id: str,
    name: str,
    value: float | None = None,
    string_value: str | None = None,
    source: str = "human",
    comment: str | None = None,
    author: str | None = None,
    span_id: str | None = None,
    eval_run_id: str | None = None,
) -> Score:
    """Insert one score. Raises ScoreTargetMissing when the trace or span is not in the project and
    ValueError for a malformed score (both or neither of value/string_value, a non-finite value, bad source)."""
    if (value is None) == (string_value is None):
        raise ValueError("a score has exactly one of 'value' (a number) or 'string_value' (a category)")
    if value is not None and not math.isfinite(value):
        raise ValueError("'value' must be a finite number")
    if source not in SOURCES:
        raise ValueError(f"'source' must be one of {', '.join(SOURCES)}, got {source!r}")
    found = conn.execute(select(traces.c.id).where(traces.c.id == trace_id, traces.c.project_id == project_id)).first()
    if found is None:
        raise ScoreTargetMissing(f"no trace {trace_id!r} in this project", "trace_id")
    if span_id is not None:
        span = conn.execute(select(spans.c.id).where(spans.c.id == span_id, spans.c.trace_id == trace_id)).first()
        if span is None:
            raise ScoreTargetMissing(f"trace {trace_id!r} has no span {span_id!r}", "span_id")
    score = Score(
        id=new_id("score"),
        project_id=project_id,
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        value=None if value is None else float(value),
        string_value=string_value,
        source=source,
        comment=comment,
        author=author,
        eval_run_id=eval_run_id,
        created_at=time.time(),
    )
    conn.execute(insert(scores).values(**score.to_dict()))
    return score


def list_scores(
    conn: Connection,
    project_id: str,
    *,
    trace_id: str | None = None,
    name: str | None = None,
    source: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Score], str | None]:
    """Newest first; returns a page and the cursor of the next page (None at the end).
    Raises pilothouse.store.traces.BadCursor for a cursor this server did not issue."""
    query = select(scores).where(scores.c.project_id == project_id)
    if trace_id is not None:
        query = query.where(scores.c.trace_id == trace_id)
    if name is not None:
        query = query.where(scores.c.name == name)
    if source is not None:
        query = query.where(scores.c.source == source)
    if cursor:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(scores.c.created_at < created, and_(scores.c.created_at == created, scores.c.id < last_id))
        )
    rows = conn.execute(query.order_by(scores.c.created_at.desc(), scores.c.id.desc()).limit(limit + 1)).all()
    page = [_row(r) for r in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return page, next_cursor
