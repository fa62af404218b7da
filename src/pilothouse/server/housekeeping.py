"""A server's background upkeep: signed audit checkpoints (periodic and at shutdown) and trace retention.

Started in the application's lifespan after start-up and stopped before the store closes, so the shutdown
checkpoint covers every event the process wrote. Per process by design: with several replicas each one
checkpoints (a checkpoint is skipped when the newest one already covers the head) and purges (PostgreSQL row
locks keep two replicas off the same traces).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from pilothouse.audit.chain import recorder
from pilothouse.audit.checkpoints import Checkpoint, Checkpointer
from pilothouse.config import Settings
from pilothouse.store.engine import Store
from pilothouse.store.retention import DAY_S, PurgeResult, purge_content

if TYPE_CHECKING:
    from pilothouse.server.state import AppState

__all__ = ["Housekeeping", "RetentionJob", "start_housekeeping"]

log = logging.getLogger("pilothouse.server")


class RetentionJob:
    """Deletes trace content older than `traces.retention_days` at start and every `retention_interval_s`."""

    def __init__(self, store: Store, retention_days: float, interval_s: float) -> None:
        self.store = store
        self.older_than_s = retention_days * DAY_S
        self.interval_s = interval_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pilothouse-trace-retention")

    def run_once(self) -> PurgeResult:
        return purge_content(
            self.store, older_than_s=self.older_than_s, record=recorder("system:retention", "trace.content.purge")
        )

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("the trace retention pass failed; retrying in %ss", self.interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None


class Housekeeping:
    """The audit checkpointer and, when `traces.retention_days` is set, the retention job."""

    def __init__(self, settings: Settings, store: Store, checkpointer: Checkpointer) -> None:
        self.checkpointer = checkpointer
        days = settings.traces.retention_days
        self.retention = None if days is None else RetentionJob(store, days, settings.traces.retention_interval_s)

    def start(self) -> None:
        self.checkpointer.start()
        if self.retention is not None:
            self.retention.start()

    async def stop(self) -> Checkpoint | None:
        """Stop both; returns the shutdown checkpoint (None when the head was already covered or it failed)."""
        if self.retention is not None:
            await self.retention.stop()
        return await self.checkpointer.stop()


def start_housekeeping(state: AppState) -> Housekeeping:
    """Start the upkeep of a started server; `await housekeeping.stop()` before the store closes."""
    if state.audit is None:
        raise RuntimeError("the audit signing key was not loaded (build_state sets it)")
    checkpointer = Checkpointer(
        state.store, state.audit.signer, state.audit.file, state.settings.audit.checkpoint_interval_s
    )
    housekeeping = Housekeeping(state.settings, state.store, checkpointer)
    housekeeping.start()
    return housekeeping
