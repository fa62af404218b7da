"""Scores: feedback, evaluation results and code checks attached to a trace (and optionally one of its spans).

A score has a data type: `numeric` (`value`, any finite number), `boolean` (`value` 1.0 for true, 0.0 for false,
so means and rates come out of the same SQL as numbers) or `categorical` (`string_value`). Rows are append-only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import Connection, and_, insert, or_, select

from pilothouse.store.ids import new_id
from pilothouse.store.score_rollups import note_score
from pilothouse.store.tables import scores, spans, traces
from pilothouse.store.traces import decode_cursor, encode_cursor

Source = Literal["human", "code", "judge"]
SOURCES: tuple[str, ...] = get_args(Source)
DataType = Literal["numeric", "boolean", "categorical"]
DATA_TYPES: tuple[str, ...] = get_args(DataType)


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
    data_type: str = "numeric"

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
            "data_type": self.data_type,
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
        data_type=row.data_type or ("numeric" if row.string_value is None else "categorical"),
    )


def infer_data_type(value: float | None, string_value: str | None, data_type: str | None) -> str:
    """The data type a score is stored with: as given, else `numeric` for a value and `categorical` for a string.
    Raises ValueError when the value does not fit the type (a boolean is 0 or 1)."""
    if data_type is None:
        return "numeric" if string_value is None else "categorical"
    if data_type not in DATA_TYPES:
        raise ValueError(f"'data_type' must be one of {', '.join(DATA_TYPES)}, got {data_type!r}")
    if data_type == "categorical" and string_value is None:
        raise ValueError("a categorical score needs 'string_value'")
    if data_type != "categorical" and value is None:
        raise ValueError(f"a {data_type} score needs 'value'")
    if data_type == "boolean" and value not in (0.0, 1.0):
        raise ValueError("a boolean score's 'value' is true or false (1 or 0)")
    return data_type


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
    data_type: str | None = None,
) -> Score:
    """Insert one score. Raises ScoreTargetMissing when the trace or span is not in the project and
    ValueError for a malformed score (both or neither of value/string_value, a non-finite value, bad source, a
    value that does not fit `data_type`). A bool `value` is a boolean score."""
    if (value is None) == (string_value is None):
        raise ValueError("a score has exactly one of 'value' (a number) or 'string_value' (a category)")
    if isinstance(value, bool):
        data_type = data_type or "boolean"
        value = float(value)
    if value is not None and not math.isfinite(value):
        raise ValueError("'value' must be a finite number")
    kind = infer_data_type(value, string_value, data_type)
    if source not in SOURCES:
        raise ValueError(f"'source' must be one of {', '.join(SOURCES)}, got {source!r}")
    # the trace row locked (PostgreSQL) so the score counters see this trace's scores one at a time
    found = conn.execute(
        select(traces.c.prompt_name, traces.c.prompt_version, traces.c.started_at)
        .where(traces.c.id == trace_id, traces.c.project_id == project_id)
        .with_for_update()
    ).first()
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
        data_type=kind,
    )
    if score.value is not None:
        note_score(
            conn,
            project_id=project_id,
            trace_id=trace_id,
            prompt_name=found.prompt_name,
            prompt_version=found.prompt_version,
            started_at=float(found.started_at),
            name=name,
            value=score.value,
        )
    conn.execute(insert(scores).values(**score.to_dict()))
    return score


def list_scores(
    conn: Connection,
    project_id: str,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    name: str | None = None,
    source: str | None = None,
    data_type: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Score], str | None]:
    """Newest first; returns a page and the cursor of the next page (None at the end).
    Raises pilothouse.store.traces.BadCursor for a cursor this server did not issue."""
    query = select(scores).where(scores.c.project_id == project_id)
    if trace_id is not None:
        query = query.where(scores.c.trace_id == trace_id)
    if span_id is not None:
        query = query.where(scores.c.span_id == span_id)
    if name is not None:
        query = query.where(scores.c.name == name)
    if data_type is not None:
        query = query.where(scores.c.data_type == data_type)
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
