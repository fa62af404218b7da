"""What a caller hands the pipeline (`GatewayCall`), and the hooks its face may run around the upstream call.

Every caller builds the same call: the HTTP face from a request (`source="http"`), prompt scenario tests in the
server (`prompt_test`), and later evaluation runs, workflow steps and in-process SDK calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pilothouse.errors import ApiError
from pilothouse.principal import Principal
from pilothouse.tracing.model import TraceSource

CallKind = Literal["chat", "embeddings"]


@dataclass(slots=True)
class GatewayCall:
    """One model call to run through the pipeline."""

    kind: CallKind
    body: Any
    """The parsed JSON body, in the OpenAI shape of `kind` (a chat body may name `prompt:NAME@REF`)."""
    principal: Principal
    source: TraceSource
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Request headers, lower-case names: cache directives, run caps (`x-pilothouse-*`)."""
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    trace_name: str | None = None
    """The trace's name; default: the kind (`chat`, `embeddings`)."""
    refusal: ApiError | None = None
    """A refusal the caller's face made before the call could run (an unreadable body): the call is traced and
    answered with it, and nothing else runs."""
    started_at: float = field(default_factory=time.time)
    """When the caller started the call (the HTTP face: before reading the body); the trace starts here."""
    trace_id: str | None = None
    """The caller's trace (a W3C `traceparent`): the call's trace joins it instead of starting a new one."""
    parent_span_id: str | None = None
    """The caller's span in that trace: the call's top-level spans become its children."""
    agent: str | None = None
    """The agent the call is made for (a workflow's agent step): the tool gate applies the project's grants to
    that agent by name as well as the key's and the project's (tools/permissions.py). In-process callers only:
    the HTTP face never sets it."""
    internal_tools: frozenset[str] = frozenset()
    """Names of tools the caller itself acts on, never run as tools (a workflow's routing and hand-off tools):
    the tool gate neither checks them when offered nor judges the answer's calls of them. In-process callers
    only: the HTTP face never sets it."""


class CallerLeft(Exception):
    """The caller had gone when the upstream call was about to start: it is not made (the trace records an
    abandoned call)."""


class CallHooks(Protocol):
    """What a caller's face does around the upstream call (the HTTP face: watch for a client that leaves)."""

    def before_upstream(self) -> None:
        """The upstream call is about to start; raise CallerLeft to stop it."""
        ...

    def after_upstream(self) -> None:
        """The upstream call ended (answer, first chunk of a stream, or failure)."""
        ...

    def absorbs_cancel(self) -> bool:
        """Asked on CancelledError: True when the caller's leaving caused it; the cancellation is then taken
        back and the call recorded as abandoned."""
        ...


class NoHooks:
    """The hooks of an in-process caller: nothing to watch."""

    def before_upstream(self) -> None:
        return None

    def after_upstream(self) -> None:
        return None

    def absorbs_cancel(self) -> bool:
        return False


NO_HOOKS = NoHooks()
