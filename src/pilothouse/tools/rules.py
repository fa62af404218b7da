"""A project's tool rules read from the store, and the per-process view the gateway checks calls against.

`ToolRules` keeps each project's rules for `ttl_s` seconds (the gateway's other definitions are cached the
same way, so a change made on one replica applies on the others within that time; the replica that made it
drops its copy at once). A project without rules is remembered as such, so the check of its calls is a
dict lookup. `check_tool_call` is the Python API for callers outside the gateway (a workflow engine).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from sqlalchemy import Connection

from pilothouse.principal import Principal
from pilothouse.store.engine import Store
from pilothouse.store.tools import list_grants, list_tools
from pilothouse.tools.constraints import parse_rules
from pilothouse.tools.decisions import Decision, decide
from pilothouse.tools.permissions import Caller, Grant, ProjectTools, SubjectKind
from pilothouse.tools.registry import Risk, ToolDefinition


def load_project_tools(conn: Connection, project_id: str) -> ProjectTools | None:
    """The project's tool rules, or None when it has none (no tool registered, no grant)."""
    rows, grants = list_tools(conn, project_id), list_grants(conn, project_id)
    if not rows and not grants:
        return None
    # the store holds only definitions and rules that were checked when they were written
    definitions = [ToolDefinition(r.name, cast(Risk, r.risk), r.description, r.parameters) for r in rows]
    return ProjectTools.build(
        definitions,
        [Grant(g.tool, cast(SubjectKind, g.kind), g.subject, parse_rules(g.rules)) for g in grants],
    )


def caller_of(who: Principal | Caller) -> Caller:
    """The caller of a tool: a key (Principal) acting in its project, or a Caller naming an agent."""
    if isinstance(who, Caller):
        return who
    return Caller(project_id=who.project_id, key_id=who.key_id)


def check_tool_call(
    store: Store, who: Principal | Caller, name: str, arguments: str | dict[str, Any] | None
) -> Decision:
    """The decision on `who` calling tool `name` with `arguments`, from the rules in the store now.

    For a workflow engine: `Caller(project_id, agent="triage")` for an agent (with `key_id` too when it acts
    for a key), or the Principal of the key it runs as. A `needs_approval` decision is the engine's cue to
    ask a person before it runs the tool."""
    caller = caller_of(who)
    with store.connect() as conn:
        rules = load_project_tools(conn, caller.project_id)
    return decide(rules, caller, name, arguments)


class ToolRules:
    """The gateway's cached view of every project's tool rules (one store read per project per `ttl_s`)."""

    def __init__(self, store: Store, ttl_s: float = 2.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, ProjectTools | None]] = {}
        self._loading: dict[str, asyncio.Task[ProjectTools | None]] = {}

    async def for_project(self, project_id: str) -> ProjectTools | None:
        """The project's rules (None: it has none); read off the event loop when the copy is older than ttl."""
        cached = self._cache.get(project_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        task = self._loading.get(project_id)
        if task is None:  # one read per project at a time; concurrent calls wait for it
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.read, project_id))
            self._loading[project_id] = task
            task.add_done_callback(lambda _: self._loading.pop(project_id, None))
        return await asyncio.shield(task)  # a caller that leaves does not cancel the others' read

    def read(self, project_id: str) -> ProjectTools | None:
        """Read the project's rules now and keep them (blocking)."""
        with self.store.connect() as conn:
            rules = load_project_tools(conn, project_id)
        self._cache[project_id] = (time.monotonic(), rules)
        return rules

    def forget(self, project_id: str) -> None:
        """Drop the cached copy (after a change made through this process)."""
        self._cache.pop(project_id, None)

    async def check(self, who: Principal | Caller, name: str, arguments: str | dict[str, Any] | None) -> Decision:
        caller = caller_of(who)
        return decide(await self.for_project(caller.project_id), caller, name, arguments)
