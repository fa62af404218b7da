"""Per-project similarity thresholds, cached in process: the cache stage reads a dict, never the database.

The first lookup loads every override (one query, in a worker thread); after that a lookup that finds them
older than `ttl_s` starts a reload in the background and goes on with the ones it has, so a change made on
another replica takes effect here within about `ttl_s`. The API reloads at once after a change it makes.
A store that cannot be read never fails a request: the last overrides read (at first, none) stay in force.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from pilothouse.store.cache_thresholds import list_thresholds
from pilothouse.store.engine import Store

log = logging.getLogger("pilothouse.cache")


class ThresholdOverrides:
    def __init__(self, store: Store, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._values: dict[str, float] | None = None  # None: never read
        self._read_at = -float("inf")  # time.monotonic() of the last reload, good or failed
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._started = self._applied = 0

    async def get(self, project_id: str) -> float | None:
        """The project's override, or None (the configured threshold applies)."""
        if self._task is None and time.monotonic() - self._read_at >= self.ttl_s:
            self._task = asyncio.get_running_loop().create_task(self._refresh(), name="pilothouse-cache-thresholds")
        if self._values is None and self._task is not None:
            await asyncio.shield(self._task)  # the first read: wait for it (later ones go on with what they have)
        return (self._values or {}).get(project_id)

    def reload(self) -> dict[str, float]:
        """Read every override now (blocking: call from a thread when on the event loop). Of two reloads that
        overlap, the one that started later wins, so a background reload never undoes the API's newer one."""
        with self._lock:
            self._started += 1
            ticket = self._started
        with self.store.connect() as conn:
            values = {o.project_id: o.threshold for o in list_thresholds(conn)}
        with self._lock:
            if ticket > self._applied:
                self._values, self._applied = values, ticket
            self._read_at = time.monotonic()
            return dict(self._values or {})

    async def aclose(self) -> None:
        """Let a reload in progress finish (before the store closes)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self.reload)
        except Exception as exc:  # keep the last good overrides; the store may be back next time
            log.warning("could not read the cache thresholds of projects (keeping the previous ones): %s", exc)
            self._read_at = time.monotonic()
            if self._values is None:
                self._values = {}
        finally:
            self._task = None
