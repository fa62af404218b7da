"""Audit events of the gateway's refusals (budgets, loop guards, max_tokens caps) and soft-budget alerts,
group-committed off the event loop.

A refusal awaits `record()` until its event is committed, so an answered refusal is always in the audit log;
events from concurrent refusals share one transaction (appends to the hash chain are serialised anyway, so
one transaction for many is far cheaper than one each). If the database stays unavailable the events go to
`<data_dir>/audit-unstored.jsonl`, appended to the chain at the next start. Successful requests never
write here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from pilothouse.audit.chain import append_event
from pilothouse.store.engine import Store
from pilothouse.store.private_files import append_private

log = logging.getLogger("pilothouse.limits")

_STOP = object()
Event = dict[str, Any]  # append_event's keyword arguments: actor, action, target, project_id, details


class AuditWriter:
    def __init__(self, store: Store, *, spill_path: Path, retries: int = 3) -> None:
        self._store = store
        self._spill = spill_path
        self._retries = retries
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pilothouse-audit-writer", daemon=True)
        self._closed = False
        self._thread.start()

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
        if self._closed:
            self._write([event])
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put((event, loop, done))
        await asyncio.shield(done)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while True:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._write([event for event, _, _ in batch])
            except Exception:
                log.exception("could not store or spill %d audit events", len(batch))
            for _, loop, done in batch:
                with contextlib.suppress(RuntimeError):  # that request's event loop is already closed
                    loop.call_soon_threadsafe(_resolve, done)
            if stop:
                return

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


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


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
