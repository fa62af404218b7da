"""The canary monitor: every label with a canary and a rollback rule, checked in the background.

`CanaryMonitor` runs `check_all` every `interval_s` seconds; each check is `canary_check.check_label`. It
needs only the store and a callback: the server builds it with `on_rollback` dropping the gateway's cached
labels of the prompt (server/app.py). Per process by design (docs/prompt-canary.md): with several replicas
each may check, and a rollback happens once (`check_label` acts under the prompt's row lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pilothouse.prompts.rollout.canary_check import CheckOutcome, check_label
from pilothouse.store.canaries import watched_labels
from pilothouse.store.engine import Store

__all__ = ["CanaryMonitor", "LabelChanged", "check_all"]

log = logging.getLogger("pilothouse.prompts.rollout.canary_monitor")

LabelChanged = Callable[[str, str], None]
"""Called with (project_id, prompt_name) after a committed rollback."""


def check_all(store: Store, on_rollback: LabelChanged | None = None) -> list[CheckOutcome]:
    """One pass of the monitor over every watched label; a failing label is logged and skipped.
    `on_rollback(project_id, prompt_name)` runs after each committed rollback (to drop cached labels)."""
    with store.connect() as conn:
        watched = watched_labels(conn)
    outcomes: list[CheckOutcome] = []
    for item in watched:
        try:
            outcome = check_label(store, item.project_id, item.prompt_name, item.label)
        except Exception:
            log.exception("canary check of %s@%s failed", item.prompt_name, item.label)
            continue
        outcomes.append(outcome)
        if outcome.rolled_back and on_rollback is not None:
            on_rollback(item.project_id, item.prompt_name)
    return outcomes


class CanaryMonitor:
    """Runs `check_all` every `interval_s` seconds in a worker thread, so the event loop never blocks on it.
    An interval of 0 disables it (checks then run only on demand)."""

    def __init__(self, store: Store, interval_s: float, on_rollback: LabelChanged | None = None) -> None:
        self.store = store
        self.interval_s = interval_s
        self.on_rollback = on_rollback
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="pilothouse-canary-monitor")

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
                return
            except TimeoutError:
                pass
            try:
                outcomes = await asyncio.to_thread(check_all, self.store, self.on_rollback)
            except Exception:
                log.exception("the canary monitor pass failed; retrying in %ss", self.interval_s)
                continue
            for outcome in outcomes:
                if outcome.rolled_back:
                    log.warning("rolled back %s@%s: %s", outcome.prompt, outcome.label, outcome.reason)

    async def stop(self) -> None:
        """Stop after the pass in progress (if any) ends."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
