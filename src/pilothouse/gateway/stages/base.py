"""The stage protocol: middleware over one call's `RequestContext`.

A stage is `await stage(ctx, call_next) -> Outcome`. It may work before the later stages (prepare, admit),
answer without them (a cache hit; a refusal is an ApiError it raises), act on their outcome (store it in the
cache), or wrap a streamed outcome's events (settle and store the trace once the stream ended; an output
guard, later). Stages are built once per pipeline from the same `Services`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pilothouse.errors import ApiError
from pilothouse.gateway.admission import Admission, Ticket
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.call import CallHooks, GatewayCall
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.prepared import Prepared, PreparedEmbeddings
from pilothouse.guards.policy.runtime import GuardState, PolicyEngine
from pilothouse.prompts.registry.resolver import ExpandedPrompt
from pilothouse.tools.rules import ToolRules
from pilothouse.tracing.model import SpanRecord, TraceRecord
from pilothouse.tracing.sink import TraceSink

if TYPE_CHECKING:
    from pilothouse.rag.querying import RagQueries

Events = AsyncGenerator[bytes, None]
"""A streamed answer: SSE events (`data: {...}\\n\\n`), without the final `[DONE]`, which the caller sends
once the stream ended (by then the trace is stored)."""


@dataclass(frozen=True, slots=True)
class Services:
    """What stages are built from: the model calls, the trace sink, and the optional admission and cache."""

    gateway: Gateway
    sink: TraceSink
    admission: Admission | None = None
    """None: no rate limits, budgets or run caps are checked (a pipeline without a limit store)."""
    cache: ResponseCache | None = None
    """None: caching is off (`cache.enabled`)."""
    guards: PolicyEngine | None = None
    """None: no guard policies are run (a pipeline without a store)."""
    tools: ToolRules | None = None
    """The projects' tool rules (tools/rules.py); None: tool calls are not checked."""
    rag: RagQueries | None = None
    """Retrieval over the store's collections (rag/querying.py); None: chat requests with `rag` are refused."""


@dataclass(slots=True, eq=False)
class RequestContext:
    """One call on its way through the stages."""

    call: GatewayCall
    trace: TraceRecord
    hooks: CallHooks
    prep: Prepared | PreparedEmbeddings | None = None
    """Set by the prepare stage."""
    prompt: ExpandedPrompt | None = None
    """A prompt reference the RAG stage expanded (its `rag` configuration read); `call.body` is then its body."""
    ticket: Ticket | None = None
    """What the admission stage reserved; settled by the settle stage."""
    guard: GuardState | None = None
    """The guard policies that apply to the call (set by the input guard stage; None: none apply)."""

    def prepared(self) -> Prepared | PreparedEmbeddings:
        if self.prep is None:
            raise RuntimeError("a stage that needs the prepared call runs before the prepare stage")
        return self.prep

    def before_upstream(self) -> None:
        """Called by the route stage right before the upstream call (raises CallerLeft when the caller left)."""
        self.hooks.before_upstream()

    def after_upstream(self) -> None:
        self.hooks.after_upstream()

    async def settle(self) -> None:
        """Replace the admission's reservations with what the trace records as used; once, whatever happens."""
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            await asyncio.shield(ticket.settle())


@dataclass(slots=True, eq=False)
class Outcome:
    """How a call ended: a whole answer (`payload`), a stream (`events`), or an error; and its trace."""

    trace: TraceRecord
    payload: dict[str, Any] | None = None
    """The OpenAI body of a whole answer (`chat.completion`, embeddings `list`)."""
    events: Events | None = None
    span: SpanRecord | None = None
    """The span that answered: the model call's (`llm`, `embedding`) or a cache hit's (`cache`)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Response headers stages add (the cache's `x-pilothouse-cache`)."""
    error: ApiError | None = None
    """The refusal or failure the caller gets (the trace records it); payload and events are then None."""

    @property
    def trace_id(self) -> str:
        return self.trace.id


CallNext = Callable[[RequestContext], Awaitable[Outcome]]


class Stage(Protocol):
    """One stage of the pipeline; `call_next` runs the stages after it (the last stage answers itself)."""

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome: ...


StageFactory = Callable[[Services], Stage]
"""How the pipeline builds a stage: its class, called with the services."""
