"""Audit events written from the request path, group-committed off the event loop (on
`store/batched_writer.py`, like the trace sink): today the gateway's refusals (budgets, loop guards,
max_tokens caps) and soft-budget alerts.

A caller awaits `record()` until its event is committed, so an answered refusal is always in the audit log;
concurrent events share one transaction (appends to the hash chain are serialised anyway, so one transaction
for many is far cheaper than one each). If the database stays unavailable the events go to
`<data_dir>/audit-unstored.jsonl`, appended to the chain at the next start (`replay_audit_spill`).
Successful requests never write here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson

from pilothouse.audit.chain import append_event
from pilothouse.store.batched_writer import BatchedWriter, Pending
from pilothouse.store.engine import Store
from pilothouse.store.private_files import append_private

log = logging.getLogger("pilothouse.audit")

Event = dict[str, Any]  # append_event's keyword arguments: actor, action, target, project_id, details


class AuditWriter(BatchedWriter[Event]):
    def __init__(self, store: Store, *, spill_path: Path, retries: int = 3) -> None:
        self._store = store
        self._spill = spill_path
        self._retries = retries
        super().__init__("pilothouse-audit-writer", batch_max=None)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        project_id: str | None,
        details: dict[str, Any] | None,
    ) -> None:
        """Append one event; returns once it is committed (or spilled)."""
        event = {"actor": actor, "action": action, "target": target, "project_id": project_id, "details": details}
        if self.closed:
            self._write([event])
            return
        await asyncio.shield(self.submit(event))

    def commit(self, batch: list[Pending[Event]]) -> None:
        try:
            self._write([pending.item for pending in batch])
        except Exception:
            log.exception("could not store or spill %d audit events", len(batch))
        for pending in batch:
            pending.resolve()

    def _write(self, events: list[Event]) -> None:
        error: Exception | None = None
        for attempt in range(self._retries):
            try:
                with self._store.begin() as conn:
                    for event in events:
                        append_event(conn, **event)
                return
            except Exception as exc:  # the database is down or busy
                error = exc
                time.sleep(0.05 * (2**attempt))
        log.error("could not store %d audit events (%s); spilling to %s", len(events), error, self._spill)
        append_private(self._spill, b"".join(orjson.dumps(event) + b"\n" for event in events))


def replay_audit_spill(store: Store, spill_path: Path) -> int:
    """Append the events an earlier process could not store; returns how many."""
    if not spill_path.exists():
        return 0
    events = [orjson.loads(line) for line in spill_path.read_bytes().splitlines() if line.strip()]
    with store.begin() as conn:
        for event in events:
            append_event(conn, **event)
    spill_path.rename(spill_path.with_suffix(f".replayed-{int(time.time())}"))
    return len(events)
