"""Budget and rate-limit definitions, cached in process: the hot path reads a dict, never the database.

`Definitions.reload()` reads both tables at once (two queries) and swaps in a new immutable index; a
background task reloads every `limits.definitions_ttl_s` seconds, so a change made on another replica takes
effect here within that time. A change made through this process's API reloads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field

from pilothouse.store.budgets import Budget, RateLimit, list_budgets, list_rate_limits
from pilothouse.store.engine import Store

log = logging.getLogger("pilothouse.limits")

Subject = tuple[str, str, str]  # (project id, scope, subject)


@dataclass(frozen=True, slots=True)
class DefinitionIndex:
    budgets: dict[Subject, tuple[Budget, ...]] = field(default_factory=dict)
    limits: dict[Subject, RateLimit] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.budgets and not self.limits

    @classmethod
    def build(cls, budgets: list[Budget], limits: list[RateLimit]) -> DefinitionIndex:
        by_subject: dict[Subject, list[Budget]] = {}
        for budget in budgets:
            by_subject.setdefault((budget.project_id, budget.scope, budget.subject), []).append(budget)
        return cls(
            budgets={k: tuple(v) for k, v in by_subject.items()},
            limits={(lim.project_id, lim.scope, lim.subject): lim for lim in limits},
        )

    def all_budgets(self) -> list[Budget]:
        return [b for group in self.budgets.values() for b in group]


class Definitions:
    def __init__(self, store: Store, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.index = DefinitionIndex()
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._started = self._applied = 0

    def reload(self) -> DefinitionIndex:
        """Read every definition now (blocking: call from a thread when on the event loop). Of two reloads that
        overlap, the one that started later wins, so a periodic reload never undoes a newer one."""
        with self._lock:
            self._started += 1
            ticket = self._started
        with self.store.connect() as conn:
            index = DefinitionIndex.build(list_budgets(conn), list_rate_limits(conn))
        with self._lock:
            if ticket > self._applied:
                self.index, self._applied = index, ticket
            return self.index

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh(), name="pilothouse-limit-definitions")

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s)
            try:
                await asyncio.to_thread(self.reload)
            except Exception as exc:  # keep the last good definitions; the store may be back next time
                log.warning("could not reload budget and limit definitions (keeping the previous ones): %s", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
