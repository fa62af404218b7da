"""The one entry point for model calls: `Pipeline.run(call, hooks)` runs a call's stages in order.

Every caller uses it: the HTTP face (`/v1/chat/completions`, `/v1/embeddings`), prompt scenario tests in the
server, and later evaluation runs, workflow steps and in-process SDK calls; so limits, budgets, the cache and
tracing apply to all of them, and each trace records its source. `STAGES` is the request path, outermost
first (docs/architecture.md, "Request path", is this list as a table); adding a stage (an input or output
guard, retrieval) is one module in gateway/stages/ and one line here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from pilothouse.gateway.admission import Admission
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.call import NO_HOOKS, CallHooks, GatewayCall
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.stages.admission import AdmissionStage
from pilothouse.gateway.stages.base import CallNext, Outcome, RequestContext, Services, Stage, StageFactory
from pilothouse.gateway.stages.cache import CacheStage
from pilothouse.gateway.stages.input_guard import InputGuardStage
from pilothouse.gateway.stages.output_guard import OutputGuardStage
from pilothouse.gateway.stages.prepare import PrepareStage
from pilothouse.gateway.stages.rag import RagStage
from pilothouse.gateway.stages.route import RouteStage
from pilothouse.gateway.stages.settle import SettleStage
from pilothouse.gateway.stages.tool_gate import ToolGateStage
from pilothouse.gateway.stages.trace import TraceStage
from pilothouse.guards.policy.runtime import PolicyEngine
from pilothouse.tools.rules import ToolRules
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import TraceSink

if TYPE_CHECKING:
    from pilothouse.rag.querying import RagQueries

STAGES: tuple[StageFactory, ...] = (
    TraceStage,  # the trace is stored once, whatever happens (errors, cancellation, abandoned streams)
    SettleStage,  # reservations are replaced by what was used, on every path, before the trace is stored
    RagStage,  # a `rag` object: retrieve for the caller, pack sources into the messages (before the cache keys)
    PrepareStage,  # validate, expand a prompt reference (if the RAG stage did not), resolve the model, checks
    InputGuardStage,  # guard policies' input rules (block, redact, flag, shadow); trace content redacted for storage
    # tool permissions (H6): outside the cache, which is shared by a project's keys while grants are per key
    ToolGateStage,  # offered tools and the answer's tool calls must be allowed for the caller (docs/tools.md)
    AdmissionStage,  # rate limits, budgets, run caps, max_tokens caps: refuse or reserve
    CacheStage,  # exact then semantic lookup (a hit answers); a miss's answer is kept
    OutputGuardStage,  # output rules over the answer (streams: a hold-back window); the cache keeps what it released
    RouteStage,  # the upstream call: deployments, retries, fallbacks, deadline; metered on the span
)


class Pipeline:
    """The ordered stages over one gateway; built once per server (server/state.py)."""

    def __init__(
        self,
        gateway: Gateway,
        sink: TraceSink,
        *,
        admission: Admission | None = None,
        cache: ResponseCache | None = None,
        tools: ToolRules | None = None,
        guards: PolicyEngine | None = None,
        rag: RagQueries | None = None,
        stages: Sequence[StageFactory] = STAGES,
    ) -> None:
        self.gateway = gateway
        self.services = Services(gateway, sink, admission, cache, guards=guards, tools=tools, rag=rag)
        if rag is not None:
            rag.run_call = self.run  # rerank calls go through this pipeline
        self.stages: tuple[Stage, ...] = tuple(make(self.services) for make in stages)
        self._first = _chain(self.stages)

    async def run(self, call: GatewayCall, hooks: CallHooks = NO_HOOKS) -> Outcome:
        """Run `call` through the stages. Returns its outcome (an answer, a stream to relay and then end with
        `[DONE]`, or the error the caller gets) once its trace is stored, or for a stream once it is ready to
        relay. Raises CallerLeft when `hooks` report that the caller left (nothing to answer)."""
        principal = call.principal
        trace = TraceRecord(
            project_id=principal.project_id,
            name=call.trace_name or call.kind,
            api_key_id=principal.key_id,
            session_id=call.session_id,
            tags=list(call.tags) or None,
            started_at=call.started_at,
            source=call.source,
        )
        if call.trace_id is not None:  # the caller's trace (traceparent): the store merges the parts (tracing/merge.py)
            trace.ledger_id = trace.id  # its in-flight record keeps a key of its own (calls of one trace may overlap)
            trace.id = call.trace_id
        return await self._first(RequestContext(call, trace, hooks))


def _chain(stages: Sequence[Stage]) -> CallNext:
    """`stages` as one callable: each stage's `call_next` is the rest of the chain (bound with `partial`, so a
    call costs one coroutine frame per stage and no wrapper frames)."""

    async def past_the_end(ctx: RequestContext) -> Outcome:
        raise RuntimeError("the last stage of the pipeline called call_next: no stage answered the call")

    handler: CallNext = past_the_end
    for stage in reversed(stages):
        handler = partial(stage, call_next=handler)
    return handler
