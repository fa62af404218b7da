"""Reads of one prompt's audit events: who moved its labels and when, and its scenario test runs.

Every change to a prompt's labels is audited with the target `prompt:NAME@LABEL` (`prompts/registry/labels.py`,
`rollout/promotion.py`, the canary check), and a test run with `prompt:NAME` (`testing/stored_run.py`). These
reads page through them newest first, limited, within one project.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from pilothouse.store.tables import audit_events


@dataclass(frozen=True, slots=True)
class PromptEvent:
    seq: int
    ts: float
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
        }


def prompt_events(
    conn: Connection,
    project_id: str,
    prompt_name: str,
    *,
    actions: Sequence[str],
    labels: bool,
    label: str | None = None,
    limit: int = 50,
    before_seq: int | None = None,
) -> list[PromptEvent]:
    """The prompt's events of `actions` (each also matching the actions under it: `prompt.label` matches
    `prompt.label.move`), newest first. `labels`: events on its labels (`prompt:NAME@LABEL`); otherwise events
    on the prompt itself (`prompt:NAME`); `label`: only events on that label. `before_seq` pages back."""
    column = audit_events.c.target
    target = f"prompt:{prompt_name}"
    if label is not None:
        where = column == f"{target}@{label}"
    elif labels:
        where = column.startswith(f"{target}@", autoescape=True)
    else:
        where = column == target
    action = audit_events.c.action
    query = (
        select(audit_events)
        .where(
            audit_events.c.project_id == project_id,
            where,
            or_(*(or_(action == a, action.startswith(f"{a}.", autoescape=True)) for a in actions)),
        )
        .order_by(audit_events.c.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(audit_events.c.seq < before_seq)
    return [PromptEvent(int(r.seq), float(r.ts), r.actor, r.action, r.target, r.details) for r in conn.execute(query)]
