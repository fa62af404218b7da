"""A prompt's label history: every move, promotion, canary step and protection change, who made it and when.

Read back from the audit log (each of those changes is audited on `prompt:NAME@LABEL` in the transaction that
makes it), so the history is exactly what the tamper-evident log holds. Pushes move the `latest` label without
an event of their own: a push's `prompt.version.create` event already says which version is newest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from pilothouse.prompts.registry.lookup import baseline_version, require_prompt
from pilothouse.store.prompt_events import PromptEvent, prompt_events

LABEL_ACTIONS = ("prompt.label", "prompt.promote", "prompt.canary")
MAX_LIMIT = 500


def _version(splits: Any) -> int | None:
    if not isinstance(splits, list) or not splits:
        return None
    try:
        return baseline_version(splits)
    except (KeyError, TypeError, ValueError):
        return None


def history_entry(event: PromptEvent) -> dict[str, Any]:
    """One change: the label, the splits before and after (and the version each stands for), why, who, when."""
    details = event.details or {}
    target = event.target or ""
    label = details.get("label") or target.partition("@")[2] or None
    before, after = details.get("from"), details.get("to")
    splits = isinstance(before, list | type(None)) and isinstance(after, list | type(None))
    return {
        "seq": event.seq,
        "ts": event.ts,
        "actor": event.actor,
        "action": event.action,
        "label": label,
        "from": before,
        "to": after,
        "from_version": _version(before) if splits else None,
        "to_version": _version(after) if splits else None,
        "reason": details.get("reason"),
    }


def label_history(
    conn: Connection,
    project_id: str,
    prompt_name: str,
    *,
    label: str | None = None,
    limit: int = 50,
    before_seq: int | None = None,
) -> dict[str, Any]:
    """The prompt's label changes, newest first (`label`: only that label's); `next_before` pages back (None: no
    more). NotFound for an unknown prompt."""
    require_prompt(conn, project_id, prompt_name)
    limit = max(1, min(limit, MAX_LIMIT))
    events = prompt_events(
        conn,
        project_id,
        prompt_name,
        actions=LABEL_ACTIONS,
        labels=True,
        label=label,
        limit=limit,
        before_seq=before_seq,
    )
    return {
        "name": prompt_name,
        "data": [history_entry(e) for e in events],
        "next_before": events[-1].seq if len(events) == limit else None,
    }
