"""The server's monitor loop: every `monitor_interval_s`, sample and embed inputs for the input-drift rules,
evaluate every enabled alert rule and run the online evaluation rules, off the event loop (a worker thread),
and hand alert changes to the webhook notifier.

Per process, like the canary monitor: with several replicas each evaluates, and the store keeps it to one
episode per rule (monitors/alerts.py) and one scoring per trace and rule (the cursor, monitors/online_eval.py).
A failing rule is logged and skipped; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pilothouse.monitors.alerts import AlertChange, Notifier, evaluate_rule
from pilothouse.monitors.drift_sampler import DriftSampler
from pilothouse.monitors.online_eval import OnlineEvaluator
from pilothouse.monitors.rules import all_enabled_rules
from pilothouse.store.engine import Store

__all__ = ["MonitorRunner"]

log = logging.getLogger("pilothouse.monitors")


class MonitorRunner:
    def __init__(
        self,
        store: Store,
        interval_s: float,
        *,
        notifier: Notifier | None = None,
        evaluator: OnlineEvaluator | None = None,
        sampler: DriftSampler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.notifier = notifier or Notifier(store)
        self.evaluator = evaluator or OnlineEvaluator(store)
        self.sampler = sampler or DriftSampler(store)
        self.clock = clock
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (nothing when the interval is 0)."""
        if self._task is None and self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="pilothouse-monitors")

    def evaluate_alerts(self) -> list[AlertChange]:
        """One pass over every enabled rule (blocking: run it in a thread)."""
        with self.store.connect() as conn:
            rules = all_enabled_rules(conn)
        changes = []
        now = self.clock()
        for rule in rules:
            try:
                change = evaluate_rule(self.store, rule, now)
            except Exception:
                log.exception("monitor rule %s (%s) failed", rule.name, rule.id)
                continue
            if change is not None:
                log.warning("monitor %s %s alert %s", rule.name, change.event, change.alert.id)
                changes.append(change)
        return changes

    async def run_once(self) -> list[AlertChange]:
        try:  # embed the newest inputs first, so the drift rules judge them in this pass
            await asyncio.to_thread(self.sampler.run_once, self.clock())
        except Exception:
            log.exception("the input drift sampling pass failed")
        changes = await asyncio.to_thread(self.evaluate_alerts)
        for change in changes:
            self.notifier.submit(change)
        try:
            await asyncio.to_thread(self.evaluator.run_once)
        except Exception:
            log.exception("the online evaluation pass failed")
        return changes

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("the monitor pass failed; retrying in %ss", self.interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.notifier.aclose()
