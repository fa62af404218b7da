"""Hash-chained audit events.

Each event's hash is SHA-256 over the previous hash and a canonical JSON of its own fields, so altering,
removing or reordering any row breaks the chain from that row on. Appends are serialised (PostgreSQL:
a transaction-scoped advisory lock; SQLite: the write lock `Store.begin()` takes with BEGIN IMMEDIATE), so
two replicas can never fork the chain.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, or_, select, text

from pilothouse.store.tables import audit_events

GENESIS = "0" * 64
_LOCK_ID = 7_300_002


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    ts: float
    project_id: str | None
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "project_id": self.project_id,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first place the chain does not hold, and why."""

    seq: int
    reason: str


def event_hash(
    prev_hash: str,
    seq: int,
    ts: float,
    project_id: str | None,
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None,
) -> str:
    body = orjson.dumps(
        {
            "seq": seq,
            "ts": repr(ts),
            "project_id": project_id,
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def append_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    project_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (so the action and its record commit together)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    head = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
    ).first()
    seq = 1 if head is None else int(head.seq) + 1
    prev = GENESIS if head is None else str(head.hash)
    ts = round(time.time(), 6)
    digest = event_hash(prev, seq, ts, project_id, actor, action, target, details)
    conn.execute(
        insert(audit_events).values(
            seq=seq,
            ts=ts,
            project_id=project_id,
            actor=actor,
            action=action,
            target=target,
            details=details,
            prev_hash=prev,
            hash=digest,
        )
    )
    return AuditEvent(seq, ts, project_id, actor, action, target, details, prev, digest)


def _row_event(row: Any) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        ts=float(row.ts),
        project_id=row.project_id,
        actor=row.actor,
        action=row.action,
        target=row.target,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def list_events(
    conn: Connection,
    *,
    project_id: str | None = None,
    limit: int = 100,
    after_seq: int = 0,
    actions: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> list[AuditEvent]:
    """Events after `after_seq`, oldest first. `actions`: each matches itself and the actions under it
    (`prompt.label` matches `prompt.label.move`); `since` <= ts < `until` (epoch seconds); `actor` and
    `target`: exactly these."""
    query = select(audit_events).where(audit_events.c.seq > after_seq).order_by(audit_events.c.seq)
    if project_id is not None:
        query = query.where(audit_events.c.project_id == project_id)
    if actions:
        action = audit_events.c.action
        query = query.where(or_(*(or_(action == a, action.startswith(f"{a}.", autoescape=True)) for a in actions)))
    if since is not None:
        query = query.where(audit_events.c.ts >= since)
    if until is not None:
        query = query.where(audit_events.c.ts < until)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    if target is not None:
        query = query.where(audit_events.c.target == target)
    return [_row_event(r) for r in conn.execute(query.limit(limit))]


def verify_chain(conn: Connection, *, batch: int = 5000) -> tuple[int, BrokenLink | None]:
    """Walk the whole chain; return (events checked, first broken link or None)."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    last = 0
    while True:
        rows = conn.execute(
            select(audit_events).where(audit_events.c.seq > last).order_by(audit_events.c.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            ev = _row_event(row)
            if ev.seq != expected_seq:
                return checked, BrokenLink(expected_seq, f"event {expected_seq} is missing (next is {ev.seq})")
            if ev.prev_hash != prev:
                return checked, BrokenLink(ev.seq, "prev_hash does not match the previous event's hash")
            recomputed = event_hash(prev, ev.seq, ev.ts, ev.project_id, ev.actor, ev.action, ev.target, ev.details)
            if recomputed != ev.hash:
                return checked, BrokenLink(ev.seq, "contents were altered (hash mismatch)")
            prev = ev.hash
            expected_seq += 1
            checked += 1
            last = ev.seq
    total = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
    if total != checked:
        return checked, BrokenLink(expected_seq, "rows exist out of sequence")
    return checked, None


def recorder(actor: str, action: str) -> Callable[[Connection, str | None, dict[str, Any]], None]:
    """`append_event` bound to an actor and action, called as record(conn, project_id, details): for code below
    this package that records its actions through a callback (store/retention.py)."""

    def record(conn: Connection, project_id: str | None, details: dict[str, Any]) -> None:
        append_event(conn, actor=actor, action=action, target=project_id, project_id=project_id, details=details)

    return record
