"""Signed checkpoints of the audit chain head: what makes the tail of the log impossible to cut unnoticed.

A checkpoint records the chain as it stood at one moment: the event count, the last event's sequence number
and hash (which, through the chain, commits to every event before it), the time, and the Ed25519 signature of
those fields by the key in `audit.signing_key_path`. Each one is stored twice:

- a row of `audit_checkpoints`, in the same database as the events;
- a line of the append-only checkpoint file beside the key (`audit-checkpoints.jsonl`), outside the database,
  written after the row commits, so a line in the file always has its row unless someone removed it.

`audit/verification.py` checks both against the chain. The server writes one every
`audit.checkpoint_interval_s` when the chain has grown, and one at shutdown (`Checkpointer`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, text

from pilothouse.audit.chain import _LOCK_ID, GENESIS
from pilothouse.audit.signing import Signer, TrustedKeys, load_or_create_signer, load_public_key
from pilothouse.store.engine import Store
from pilothouse.store.private_files import append_private
from pilothouse.store.tables import audit_checkpoints, audit_events

__all__ = [
    "AuditSetup",
    "Checkpoint",
    "CheckpointFile",
    "Checkpointer",
    "chain_head",
    "stored_checkpoints",
    "write_checkpoint",
]

log = logging.getLogger("pilothouse.audit")

FORMAT = 1
"""Version of the signed body; part of what is signed."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed statement of the chain head. `id` is the row's (None for a line not read from the table)."""

    ts: float
    event_count: int
    last_seq: int
    head_hash: str
    key_id: str
    signature: str
    id: int | None = None

    def signed_body(self) -> bytes:
        """The bytes the signature covers: a canonical JSON of every field but the signature and row id."""
        return signed_body(self.ts, self.event_count, self.last_seq, self.head_hash, self.key_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "event_count": self.event_count,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            ts=float(data["ts"]),
            event_count=int(data["event_count"]),
            last_seq=int(data["last_seq"]),
            head_hash=str(data["head_hash"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
            id=None if data.get("id") is None else int(data["id"]),
        )


def signed_body(ts: float, event_count: int, last_seq: int, head_hash: str, kid: str) -> bytes:
    fields = {
        "format": FORMAT,
        "ts": repr(ts),
        "event_count": event_count,
        "last_seq": last_seq,
        "head_hash": head_hash,
        "key_id": kid,
    }
    return b"pilothouse-audit-checkpoint\n" + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def chain_head(conn: Connection) -> tuple[int, int, str]:
    """(event count, last sequence number, last hash); (0, 0, GENESIS) for an empty log."""
    count = int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
    head = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
    ).first()
    if head is None:
        return count, 0, GENESIS
    return count, int(head.seq), str(head.hash)


def _row_checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        ts=float(row.ts),
        event_count=int(row.event_count),
        last_seq=int(row.last_seq),
        head_hash=str(row.head_hash),
        key_id=str(row.key_id),
        signature=str(row.signature),
        id=int(row.id),
    )


def stored_checkpoints(conn: Connection) -> list[Checkpoint]:
    """Every checkpoint row, oldest first."""
    rows = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.id))
    return [_row_checkpoint(r) for r in rows]


class CheckpointFile:
    """The append-only copy of the checkpoints outside the database: one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        append_private(self.path, orjson.dumps(checkpoint.to_dict(), option=orjson.OPT_SORT_KEYS) + b"\n")

    def read(self) -> tuple[list[Checkpoint], list[str]]:
        """The checkpoints in the file and a description of each line that is not one (a missing file: none)."""
        if not self.path.exists():
            return [], []
        checkpoints: list[Checkpoint] = []
        bad: list[str] = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                checkpoints.append(Checkpoint.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                bad.append(f"{self.path}:{number} is not a checkpoint ({type(exc).__name__})")
        return checkpoints, bad


def write_checkpoint(
    store: Store, signer: Signer, file: CheckpointFile, *, only_if_moved: bool = False
) -> Checkpoint | None:
    """Sign the current head and store it in the table, then in the file. With `only_if_moved`, nothing is
    written (None) when the newest checkpoint already covers the head."""
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":  # the head as of the last committed append, none in between
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        count, last_seq, head_hash = chain_head(conn)
        if only_if_moved:
            newest = conn.execute(
                select(audit_checkpoints.c.last_seq, audit_checkpoints.c.head_hash)
                .order_by(audit_checkpoints.c.id.desc())
                .limit(1)
            ).first()
            if newest is not None and (newest.last_seq, newest.head_hash) == (last_seq, head_hash):
                return None
        ts = round(time.time(), 6)
        kid = signer.key_id
        signature = signer.sign(signed_body(ts, count, last_seq, head_hash, kid))
        row_id = conn.execute(
            insert(audit_checkpoints)
            .values(ts=ts, event_count=count, last_seq=last_seq, head_hash=head_hash, key_id=kid, signature=signature)
            .returning(audit_checkpoints.c.id)
        ).scalar_one()
    checkpoint = Checkpoint(ts, count, last_seq, head_hash, kid, signature, int(row_id))
    file.append(checkpoint)
    return checkpoint


@dataclass(frozen=True, slots=True)
class AuditSetup:
    """What a server needs to checkpoint and verify: its signing key, the checkpoint file, the trusted keys."""

    signer: Signer
    file: CheckpointFile
    trusted: TrustedKeys

    @classmethod
    def open(cls, key_path: Path, file_path: Path, trusted_paths: Iterable[Path] = ()) -> AuditSetup:
        """Load the signing key (created if absent) and the rotated-out public keys still trusted."""
        signer = load_or_create_signer(key_path)
        trusted = TrustedKeys([signer.public, *(load_public_key(p) for p in trusted_paths)])
        return cls(signer, CheckpointFile(file_path), trusted)


class Checkpointer:
    """Checkpoints the head every `interval_s` seconds when the chain grew (0: never periodically), and once
    more at `stop()`, so a clean shutdown leaves the whole log covered."""

    def __init__(self, store: Store, signer: Signer, file: CheckpointFile, interval_s: float) -> None:
        self.store = store
        self.signer = signer
        self.file = file
        self.interval_s = interval_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="pilothouse-audit-checkpointer")

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
                return
            except TimeoutError:
                pass
            await self.checkpoint()

    async def checkpoint(self) -> Checkpoint | None:
        """One checkpoint now if the head moved; a failure is logged (the next one covers the same events)."""
        try:
            return await asyncio.to_thread(write_checkpoint, self.store, self.signer, self.file, only_if_moved=True)
        except Exception:
            log.exception("could not write an audit checkpoint")
            return None

    async def stop(self) -> Checkpoint | None:
        """Stop the periodic task and write the shutdown checkpoint (before the store closes)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        return await self.checkpoint()


def latest(checkpoints: Iterable[Checkpoint]) -> Checkpoint | None:
    """The checkpoint covering the most events."""
    return max(checkpoints, key=lambda c: (c.last_seq, c.ts), default=None)
