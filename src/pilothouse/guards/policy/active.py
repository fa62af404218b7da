"""The policies in force, per project, held in process: the guard stages read a dict, never the database.

`ActivePolicies` loads the version in force of every enabled policy (one query, in a worker thread) and
compiles each (its scanners built once and shared: `engine.ScannerCache`). A lookup that finds them older
than `ttl_s` starts a reload in the background and goes on with the ones it has, so a push on another replica
takes effect here within about `ttl_s`; the API reloads at once after a change it makes. A policy whose
scanners cannot be built (a plugin uninstalled since the push) is kept as broken: calls in its scope are
refused with 503 `guard_unavailable` rather than let through unguarded. A store that cannot be read keeps
the last policies read in force.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from pydantic import ValidationError

from pilothouse.guards.policy.engine import CompiledPolicy, ScannerCache, compile_policy
from pilothouse.guards.policy.loader import PolicyError
from pilothouse.guards.policy.model import Policy
from pilothouse.store.engine import Store
from pilothouse.store.policies import ActivePolicy, active_policies

log = logging.getLogger("pilothouse.guards")

Book = dict[str, tuple[CompiledPolicy, ...]]


class BrokenPolicy(Exception):
    """A stored policy version that cannot run here (its scanners cannot be built)."""


def compile_active(row: ActivePolicy, cache: ScannerCache) -> CompiledPolicy:
    try:
        return compile_policy(Policy.model_validate(row.body), row.version, cache)
    except (PolicyError, ValidationError) as exc:
        raise BrokenPolicy(f"policy '{row.name}' version {row.version} cannot run: {exc}") from exc


class ActivePolicies:
    def __init__(self, store: Store, ttl_s: float, cache: ScannerCache | None = None) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.cache = cache or ScannerCache()
        self.broken: dict[tuple[str, str], str] = {}
        """(project id, policy name) -> why it cannot run."""
        self._book: Book | None = None
        self._compiled: dict[tuple[str, str, str], CompiledPolicy] = {}  # (project, name, hash): built once
        self._read_at = -float("inf")
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._started = self._applied = 0

    async def get(self, project_id: str) -> tuple[CompiledPolicy, ...]:
        """The project's policies in force, by name."""
        if self._task is None and time.monotonic() - self._read_at >= self.ttl_s:
            self._task = asyncio.get_running_loop().create_task(self._refresh(), name="pilothouse-policies")
        if self._book is None and self._task is not None:
            await asyncio.shield(self._task)
        return (self._book or {}).get(project_id, ())

    def broken_in(self, project_id: str) -> dict[str, str]:
        return {name: why for (pid, name), why in self.broken.items() if pid == project_id}

    def reload(self) -> Book:
        """Read and compile every policy in force now (blocking: from a thread when on the event loop). Of
        two reloads that overlap, the later one wins."""
        with self._lock:
            self._started += 1
            ticket = self._started
        with self.store.connect() as conn:
            rows = active_policies(conn)
        book: dict[str, list[CompiledPolicy]] = {}
        broken: dict[tuple[str, str], str] = {}
        compiled: dict[tuple[str, str, str], CompiledPolicy] = {}
        for row in rows:
            key = (row.project_id, row.name, row.content_hash)
            found = self._compiled.get(key)
            if found is None or found.version != row.version:
                try:
                    found = compile_active(row, self.cache)
                except BrokenPolicy as exc:
                    log.error("%s", exc)
                    broken[(row.project_id, row.name)] = str(exc)
                    continue
            compiled[key] = found
            book.setdefault(row.project_id, []).append(found)
        with self._lock:
            if ticket > self._applied:
                self._book = {pid: tuple(found) for pid, found in book.items()}
                self.broken, self._compiled, self._applied = broken, compiled, ticket
            self._read_at = time.monotonic()
            return dict(self._book or {})

    async def aclose(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self.reload)
        except Exception as exc:  # keep the last good policies; the store may be back next time
            log.warning("could not read the guard policies (keeping the previous ones): %s", exc)
            self._read_at = time.monotonic()
            if self._book is None:
                self._book = {}
        finally:
            self._task = None
