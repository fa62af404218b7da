"""Verify the audit log: the hash chain, and the chain against every signed checkpoint.

What each check catches:
- the chain (`verify_chain`): a row deleted in the middle, a payload edited, rows reordered;
- each checkpoint's signature (trusted public keys only): a forged or edited checkpoint;
- each checkpoint against the chain: the newest events deleted (the log ends before a checkpoint's last event),
  or the chain rewritten or replaced (the event a checkpoint names has another hash);
- the checkpoint file against the table: checkpoints deleted from the database, or the table replaced by one
  without them (a line of the file with no row).

What it cannot catch: events removed after the newest checkpoint (at most `checkpoint_interval_s` of them, none
after a clean shutdown), and anyone who holds the signing key and can also rewrite the checkpoint file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from pilothouse.audit.chain import BrokenLink, verify_chain
from pilothouse.audit.checkpoints import Checkpoint, CheckpointFile, latest, stored_checkpoints
from pilothouse.audit.signing import TrustedKeys
from pilothouse.store.tables import audit_events

__all__ = ["AuditReport", "verify_log"]

_IN_BATCH = 500


@dataclass(slots=True)
class AuditReport:
    """The outcome of `verify_log`. `broken` is the problem at the lowest sequence number (None: intact)."""

    checked: int
    """Events whose chain links were verified (up to the first broken one)."""
    problems: list[BrokenLink] = field(default_factory=list)
    checkpoints: int = 0
    """Checkpoints (table and file together, each once) whose signature and head matched."""
    latest: Checkpoint | None = None
    """The newest valid checkpoint: every event up to its `last_seq` is covered by a signature."""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken(self) -> BrokenLink | None:
        return min(self.problems, key=lambda p: p.seq, default=None)

    def to_dict(self) -> dict[str, Any]:
        broken = self.broken
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason},
            "problems": [{"seq": p.seq, "reason": p.reason} for p in sorted(self.problems, key=lambda p: p.seq)],
            "checkpoints": self.checkpoints,
            "latest_checkpoint": None if self.latest is None else self.latest.to_dict(),
            "unsigned_events": self.checked - (self.latest.last_seq if self.latest else 0) if self.ok else None,
            "warnings": self.warnings,
        }


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _hashes_at(conn: Connection, seqs: set[int]) -> dict[int, str]:
    wanted = sorted(seqs)
    found: dict[int, str] = {}
    for start in range(0, len(wanted), _IN_BATCH):
        chunk = wanted[start : start + _IN_BATCH]
        rows = conn.execute(select(audit_events.c.seq, audit_events.c.hash).where(audit_events.c.seq.in_(chunk)))
        found.update({int(r.seq): str(r.hash) for r in rows})
    return found


def verify_log(
    conn: Connection, trusted: TrustedKeys, file: CheckpointFile | None, *, batch: int = 5000
) -> AuditReport:
    """Check the chain, then every checkpoint of the table and of `file` (None: the table's only)."""
    checked, broken = verify_chain(conn, batch=batch)
    report = AuditReport(checked=checked, problems=[] if broken is None else [broken])

    in_table = stored_checkpoints(conn)
    in_file: list[Checkpoint] = []
    if file is None:
        report.warnings.append("no checkpoint file was given: checkpoints were compared with the table only")
    elif not file.path.exists():
        report.warnings.append(f"the checkpoint file {file.path} does not exist (no checkpoint was written here)")
    else:
        in_file, unreadable = file.read()
        report.warnings.extend(unreadable)

    table_signatures = {c.signature for c in in_table}
    for cp in in_file:
        if cp.signature not in table_signatures:
            report.problems.append(
                BrokenLink(
                    cp.last_seq,
                    f"the checkpoint of {_when(cp.ts)} (event {cp.last_seq}) is in {file.path if file else 'the file'} "
                    "but not in the database: checkpoints were deleted or the audit tables replaced",
                )
            )

    unique: dict[str, Checkpoint] = {}
    for cp in [*in_table, *in_file]:
        unique.setdefault(cp.signature, cp)
    signed: list[Checkpoint] = []
    for cp in unique.values():
        why = trusted.verify(cp.key_id, cp.signed_body(), cp.signature)
        if why is None:
            signed.append(cp)
        else:
            where = f"checkpoint #{cp.id}" if cp.id is not None else f"the file's checkpoint of {_when(cp.ts)}"
            report.problems.append(BrokenLink(cp.last_seq, f"{where} is not valid: {why}"))

    last_seq = _log_end(conn)
    hashes = _hashes_at(conn, {cp.last_seq for cp in signed if cp.last_seq > 0})
    valid: list[Checkpoint] = []
    for cp in signed:
        if cp.last_seq > last_seq:
            report.problems.append(
                BrokenLink(
                    last_seq + 1,
                    f"the log ends at event {last_seq}, but the checkpoint of {_when(cp.ts)} covers {cp.last_seq} "
                    "events: the newest events were deleted",
                )
            )
        elif cp.last_seq > 0 and hashes.get(cp.last_seq) != cp.head_hash:
            why = "is missing" if cp.last_seq not in hashes else "differs from"
            report.problems.append(
                BrokenLink(
                    cp.last_seq,
                    f"event {cp.last_seq} {why} the one signed in the checkpoint of {_when(cp.ts)}: "
                    "the chain was rewritten or replaced",
                )
            )
        elif cp.event_count != cp.last_seq:
            report.problems.append(
                BrokenLink(
                    cp.last_seq, f"the checkpoint of {_when(cp.ts)} counts {cp.event_count} events up to {cp.last_seq}"
                )
            )
        else:
            valid.append(cp)
    report.checkpoints = len(valid)
    report.latest = latest(valid)
    return report


def _log_end(conn: Connection) -> int:
    head = conn.execute(select(audit_events.c.seq).order_by(audit_events.c.seq.desc()).limit(1)).scalar()
    return 0 if head is None else int(head)
