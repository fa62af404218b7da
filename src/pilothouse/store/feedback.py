"""End-user feedback: a thumbs up or down (and a comment) on a trace, sent by the application for its user.

Each feedback row is also written, in the same transaction, as a boolean score named `feedback` (1.0 up, 0.0
down, source `human`), so the feedback rate is one more score series for prompt statistics, canaries and
monitors; the row keeps what a score does not: the end user who gave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, insert, select

from pilothouse.store.ids import new_id
from pilothouse.store.scores import add_score
from pilothouse.store.tables import feedback

Thumbs = Literal["up", "down"]
FEEDBACK_SCORE = "feedback"
"""The name of the score series every feedback row also writes."""


@dataclass(frozen=True, slots=True)
class Feedback:
    id: str
    project_id: str
    trace_id: str
    score_id: str
    thumbs: str
    comment: str | None
    user_id: str | None
    author: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "trace_id": self.trace_id,
            "score_id": self.score_id,
            "thumbs": self.thumbs,
            "comment": self.comment,
            "user_id": self.user_id,
            "author": self.author,
            "created_at": self.created_at,
        }


def add_feedback(
    conn: Connection,
    *,
    project_id: str,
    trace_id: str,
    thumbs: str,
    comment: str | None = None,
    user_id: str | None = None,
    author: str | None = None,
) -> Feedback:
    """Record one feedback and its `feedback` score. Raises ScoreTargetMissing (store/scores.py) when the trace
    is not in the project and ValueError for thumbs other than `up` or `down`."""
    if thumbs not in ("up", "down"):
        raise ValueError(f"'thumbs' must be 'up' or 'down', got {thumbs!r}")
    score = add_score(
        conn,
        project_id=project_id,
        trace_id=trace_id,
        name=FEEDBACK_SCORE,
        value=1.0 if thumbs == "up" else 0.0,
        data_type="boolean",
        source="human",
        comment=comment,
        author=author,
    )
    row = Feedback(
        id=new_id("fb"),
        project_id=project_id,
        trace_id=trace_id,
        score_id=score.id,
        thumbs=thumbs,
        comment=comment,
        user_id=user_id,
        author=author,
        created_at=score.created_at,
    )
    conn.execute(insert(feedback).values(**row.to_dict()))
    return row


def trace_feedback(conn: Connection, project_id: str, trace_id: str) -> list[Feedback]:
    """The feedback on one trace, oldest first."""
    rows = conn.execute(
        select(feedback)
        .where(feedback.c.project_id == project_id, feedback.c.trace_id == trace_id)
        .order_by(feedback.c.created_at, feedback.c.id)
    ).all()
    return [
        Feedback(
            id=r.id,
            project_id=r.project_id,
            trace_id=r.trace_id,
            score_id=r.score_id,
            thumbs=r.thumbs,
            comment=r.comment,
            user_id=r.user_id,
            author=r.author,
            created_at=r.created_at,
        )
        for r in rows
    ]
