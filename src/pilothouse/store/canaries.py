"""Reads for the canary monitor: the labels it watches, and the audit events of one canary.

The decisions and what they mean live in `pilothouse.prompts` (the canary check); these are plain reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from pilothouse.store.tables import audit_events, prompt_labels, prompts


@dataclass(frozen=True, slots=True)
class WatchedLabel:
    """A label that splits between two versions and has a rollback rule."""

    project_id: str
    prompt_name: str
    label: str


def watched_labels(conn: Connection) -> list[WatchedLabel]:
    """Every label, in every project, that splits between two versions and has a rollback rule."""
    query = select(
        prompts.c.project_id,
        prompts.c.name,
        prompt_labels.c.name.label("label"),
        prompt_labels.c.splits,
        prompt_labels.c.rollback_rule,
    ).join(prompts, prompts.c.id == prompt_labels.c.prompt_id)
    return [
        WatchedLabel(row.project_id, row.name, row.label)
        for row in conn.execute(query)
        if row.rollback_rule and isinstance(row.splits, list) and len(row.splits) == 2
    ]


def target_events(
    conn: Connection,
    project_id: str,
    target: str,
    *,
    actions: Sequence[str],
    since: float,
    start_action: str,
    start_since: float,
) -> list[dict[str, Any]]:
    """The audit events of `target` (oldest first): those of `actions` at or after `since`, and those of
    `start_action` at or after `start_since`."""
    query = (
        select(audit_events)
        .where(
            audit_events.c.project_id == project_id,
            audit_events.c.target == target,
            or_(
                and_(audit_events.c.action.in_(tuple(actions)), audit_events.c.ts >= since),
                and_(audit_events.c.action == start_action, audit_events.c.ts >= start_since),
            ),
        )
        .order_by(audit_events.c.seq)
    )
    return [
        {"seq": int(r.seq), "ts": float(r.ts), "actor": r.actor, "action": r.action, "details": r.details}
        for r in conn.execute(query)
    ]
