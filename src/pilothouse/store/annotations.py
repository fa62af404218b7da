"""Annotation queues and their tasks (tables `annotation_queues`, `annotation_tasks`).

Plain reads and writes on a Connection. A task's `target` (`trace:<id>` or `result:<experiment>/<variant>/<item>`)
is unique per queue, so adding the same items twice queues them once. `claim_next` hands an open task to an
annotator (an assignee's own tasks first, then unassigned ones, oldest first).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, insert, or_, select, update

from pilothouse.store.ids import new_id
from pilothouse.store.tables import annotation_queues, annotation_tasks

__all__ = [
    "QueueRow",
    "TaskRow",
    "add_tasks",
    "create_queue",
    "get_queue",
    "get_task",
    "list_queues",
    "next_task",
    "queue_labels",
    "submit",
]


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: str
    project_id: str
    name: str
    description: str | None
    score: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: str
    queue_id: str
    target: str
    trace_id: str | None
    experiment_id: str | None
    variant: str | None
    item_id: str | None
    assignee: str | None
    status: str
    value: float | None
    string_value: str | None
    comment: str | None
    annotator: str | None
    done_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "trace_id": self.trace_id,
            "experiment_id": self.experiment_id,
            "variant": self.variant,
            "item_id": self.item_id,
            "assignee": self.assignee,
            "status": self.status,
            "value": self.value,
            "string_value": self.string_value,
            "comment": self.comment,
            "annotator": self.annotator,
            "done_at": self.done_at,
        }


def _queue(row: Any) -> QueueRow:
    return QueueRow(row.id, row.project_id, row.name, row.description, dict(row.score), row.created_at)


def _task(row: Any) -> TaskRow:
    return TaskRow(
        row.id,
        row.queue_id,
        row.target,
        row.trace_id,
        row.experiment_id,
        row.variant,
        row.item_id,
        row.assignee,
        row.status,
        row.value,
        row.string_value,
        row.comment,
        row.annotator,
        row.done_at,
    )


def create_queue(
    conn: Connection, *, project_id: str, name: str, description: str | None, score: dict[str, Any], actor: str | None
) -> QueueRow:
    row = QueueRow(new_id("aq"), project_id, name, description, score, time.time())
    conn.execute(
        insert(annotation_queues).values(
            id=row.id,
            project_id=project_id,
            name=name,
            description=description,
            score=score,
            created_at=row.created_at,
            created_by=actor,
        )
    )
    return row


def get_queue(conn: Connection, project_id: str, name: str) -> QueueRow | None:
    row = conn.execute(
        select(annotation_queues).where(annotation_queues.c.project_id == project_id, annotation_queues.c.name == name)
    ).first()
    return None if row is None else _queue(row)


def list_queues(conn: Connection, project_id: str) -> list[tuple[QueueRow, dict[str, int]]]:
    """Every queue of the project with its task counts by status."""
    queues = [
        _queue(r)
        for r in conn.execute(
            select(annotation_queues)
            .where(annotation_queues.c.project_id == project_id)
            .order_by(annotation_queues.c.name)
        )
    ]
    counts: dict[str, dict[str, int]] = {q.id: {"open": 0, "done": 0, "skipped": 0} for q in queues}
    if queues:
        for row in conn.execute(
            select(annotation_tasks.c.queue_id, annotation_tasks.c.status, func.count())
            .where(annotation_tasks.c.queue_id.in_(list(counts)))
            .group_by(annotation_tasks.c.queue_id, annotation_tasks.c.status)
        ):
            counts[row[0]][row[1]] = int(row[2])
    return [(q, counts[q.id]) for q in queues]


def add_tasks(conn: Connection, queue_id: str, targets: Sequence[dict[str, Any]], *, assignee: str | None) -> int:
    """Queue `targets` (dicts with `target` and the trace or result fields); those already queued are skipped.
    Returns how many were added."""
    wanted = {t["target"]: t for t in targets}
    have = {
        r[0]
        for r in conn.execute(
            select(annotation_tasks.c.target).where(
                annotation_tasks.c.queue_id == queue_id, annotation_tasks.c.target.in_(list(wanted))
            )
        )
    }
    now = time.time()
    rows = [
        {
            "id": new_id("at"),
            "queue_id": queue_id,
            "target": key,
            "trace_id": t.get("trace_id"),
            "experiment_id": t.get("experiment_id"),
            "variant": t.get("variant"),
            "item_id": t.get("item_id"),
            "assignee": assignee,
            "status": "open",
            "created_at": now,
        }
        for key, t in wanted.items()
        if key not in have
    ]
    if rows:
        conn.execute(insert(annotation_tasks), rows)
    return len(rows)


def get_task(conn: Connection, queue_id: str, task_id: str) -> TaskRow | None:
    row = conn.execute(
        select(annotation_tasks).where(annotation_tasks.c.queue_id == queue_id, annotation_tasks.c.id == task_id)
    ).first()
    return None if row is None else _task(row)


def next_task(conn: Connection, queue_id: str, *, assignee: str | None) -> TaskRow | None:
    """The next open task for `assignee`: theirs first, then unassigned ones; oldest first."""
    query = select(annotation_tasks).where(annotation_tasks.c.queue_id == queue_id, annotation_tasks.c.status == "open")
    if assignee is None:
        query = query.order_by(annotation_tasks.c.created_at, annotation_tasks.c.id)
    else:
        query = query.where(
            or_(annotation_tasks.c.assignee == assignee, annotation_tasks.c.assignee.is_(None))
        ).order_by(
            case((annotation_tasks.c.assignee == assignee, 0), else_=1),
            annotation_tasks.c.created_at,
            annotation_tasks.c.id,
        )
    row = conn.execute(query.limit(1)).first()
    return None if row is None else _task(row)


def submit(
    conn: Connection,
    task_id: str,
    *,
    status: str,
    value: float | None,
    string_value: str | None,
    comment: str | None,
    annotator: str | None,
) -> bool:
    """Record a person's answer (or a skip) on an open task; False when it was no longer open."""
    done = conn.execute(
        update(annotation_tasks)
        .where(annotation_tasks.c.id == task_id, annotation_tasks.c.status == "open")
        .values(
            status=status,
            value=value,
            string_value=string_value,
            comment=comment,
            annotator=annotator,
            done_at=time.time(),
        )
    )
    return done.rowcount == 1


def queue_labels(conn: Connection, queue_id: str, experiment_id: str) -> dict[tuple[str, str], Any]:
    """People's answers on an experiment's results: (variant, item id) -> the value (a bool for a boolean queue)
    or the category."""
    rows = conn.execute(
        select(annotation_tasks).where(
            annotation_tasks.c.queue_id == queue_id,
            annotation_tasks.c.experiment_id == experiment_id,
            annotation_tasks.c.status == "done",
        )
    ).all()
    boolean = (
        conn.execute(select(annotation_queues.c.score).where(annotation_queues.c.id == queue_id)).scalar_one()[
            "data_type"
        ]
        == "boolean"
    )

    def label(row: Any) -> Any:
        if row.string_value is not None:
            return row.string_value
        return bool(row.value) if boolean else row.value

    return {(r.variant, r.item_id): label(r) for r in rows}
