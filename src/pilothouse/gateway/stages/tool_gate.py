"""The tool gate: a model's tool calls must be allowed for the caller (tools/, docs/tools.md).

For a project with tool rules (a project without them passes straight through, after one dict lookup):
- on the way in, a request that offers the model a tool (`tools`, `functions`) not allowed for the caller is
  refused before admission, with no upstream call: 403 `tool_not_allowed`, `param` naming the tool's index;
- on the way out, every tool call of the answer is decided: one not registered or not granted is refused
  with `tool_not_allowed`, one whose arguments fail the schema or the grant's rules with
  `tool_arguments_invalid`, and an allowed call of a `high`-risk tool with `tool_requires_approval` (a person
  must approve it; on the gateway path that is a refusal, the workflow engine asks for the approval). Each is
  a 403 that names the tool and the rule, never the arguments.

The gate sits outside the response cache, so a cached answer is judged for each caller as a fresh one is.
A stream relays text as it comes and holds every event from the first tool-call delta on until the stream
ended and the calls are judged: when the tool calls came before any text the refusal is a proper 403 (nothing
was sent yet); after text, the stream ends with an SSE error event of the same body. Every decision is a
`guard` span; every refusal an audit event (`tool.refused`, `tool.approval_required`).
"""

from __future__ import annotations

import time

from pilothouse.audit.writer import AuditWriter
from pilothouse.errors import ApiError
from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.stages.base import CallNext, Events, Outcome, RequestContext, Services
from pilothouse.gateway.streaming import sse
from pilothouse.gateway.tool_calls import StreamHold, ToolCall, calls_in_completion, offered_tools
from pilothouse.tools.decisions import Decision, decide, first_refusal
from pilothouse.tools.permissions import Caller, ProjectTools
from pilothouse.tracing.model import SpanRecord, TraceRecord


class ToolGateStage:
    def __init__(self, services: Services) -> None:
        self.rules = services.tools
        self.audit: AuditWriter | None = services.admission.audit if services.admission is not None else None

    async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
        prep = ctx.prep
        if self.rules is None or not isinstance(prep, Prepared):
            return await call_next(ctx)
        principal = ctx.call.principal
        tools = await self.rules.for_project(principal.project_id)
        if tools is None:
            return await call_next(ctx)
        caller = Caller(project_id=principal.project_id, key_id=principal.key_id, agent=ctx.call.agent)
        internal = ctx.call.internal_tools
        await self._check_offered(ctx, prep, tools, caller, internal)
        outcome = await call_next(ctx)
        if outcome.payload is not None:
            calls = _external(calls_in_completion(outcome.payload), internal)
            await self._judge(ctx.trace, tools, caller, calls, "response")
        elif outcome.events is not None:
            await self._gate_stream(ctx, tools, caller, outcome)
        return outcome

    async def _check_offered(
        self, ctx: RequestContext, prep: Prepared, tools: ProjectTools, caller: Caller, internal: frozenset[str]
    ) -> None:
        for where, name in offered_tools(prep.body.params):
            if name in internal:
                continue
            if tools.grant_for(caller, name) is None or name not in tools.tools:
                decision = decide(tools, caller, name, None)
                if prep.span in ctx.trace.spans and prep.span.ended_at is None:
                    ctx.trace.spans.remove(prep.span)  # refused before admission: no model call was made
                await self._record(ctx.trace, caller, decision, "request", 0.0)
                raise decision.error(param=where)

    async def _judge(
        self, trace: TraceRecord, tools: ProjectTools, caller: Caller, calls: list[ToolCall], where: str
    ) -> None:
        """Decide each call (a guard span each); raise the refusal of the first that is not allowed."""
        decisions: dict[Decision, float] = {}
        for call in calls:
            started = time.perf_counter()
            decision = decide(tools, caller, call.name, call.arguments)
            latency_ms = decisions[decision] = (time.perf_counter() - started) * 1000.0
            if decision.allowed:
                _span(trace, decision, where, latency_ms).finish()
        refusal = first_refusal(decisions)
        if refusal is not None:
            await self._record(trace, caller, refusal, where, decisions[refusal])
            raise refusal.error()

    async def _gate_stream(self, ctx: RequestContext, tools: ProjectTools, caller: Caller, outcome: Outcome) -> None:
        """Read ahead until text is released or the stream ended; a refusal before any text is a 403."""
        events, hold, ready = outcome.events, StreamHold(), []
        assert events is not None
        try:
            async for event in events:
                released = hold.feed(event)
                if released is not None:
                    ready.append(released)
                if hold.text_released:
                    break
            else:
                calls = _external(hold.calls(), ctx.call.internal_tools)
                await self._judge(ctx.trace, tools, caller, calls, "response")
                ready += hold.held
                hold.held.clear()
        except BaseException:
            await events.aclose()  # meters and settles what the model spent
            raise
        outcome.events = self._relay(ctx.trace, tools, caller, ctx.call.internal_tools, hold, ready, events)

    async def _relay(
        self,
        trace: TraceRecord,
        tools: ProjectTools,
        caller: Caller,
        internal: frozenset[str],
        hold: StreamHold,
        ready: list[bytes],
        rest: Events,
    ) -> Events:
        try:
            for event in ready:
                yield event
            ended = False
            async for event in rest:
                released = hold.feed(event)
                if released is not None:
                    yield released
            ended = True
        finally:
            await rest.aclose()
        if not ended or not hold.held:
            return
        try:
            await self._judge(trace, tools, caller, _external(hold.calls(), internal), "stream")
        except ApiError as refusal:  # the status line is sent: the stream ends with the error instead
            open_spans = [s for s in trace.spans if s.kind == "guard" and s.ended_at is None]
            for span in open_spans:
                span.finish(status="error", error=refusal.message)
            trace.status = "error"
            yield sse(refusal.body())
            return
        for event in hold.held:
            yield event

    async def _record(
        self, trace: TraceRecord, caller: Caller, decision: Decision, where: str, latency_ms: float
    ) -> None:
        """The refusal's guard span (left open: the trace stage ends it with the error) and audit event."""
        _span(trace, decision, where, latency_ms)
        if self.audit is None:
            return
        action = "tool.approval_required" if decision.verdict == "needs_approval" else "tool.refused"
        agent = {"agent": caller.agent} if caller.agent else {}
        await self.audit.record(
            actor=trace.api_key_id or "anonymous",
            action=action,
            target=decision.tool,
            project_id=trace.project_id,
            details={**decision.to_dict(), **agent, "stage": where, "trace_id": trace.id},
        )


def _external(calls: list[ToolCall], internal: frozenset[str]) -> list[ToolCall]:
    """The tool calls the gate judges: all but those of the caller's internal tools."""
    return [c for c in calls if c.name not in internal] if internal else calls


def _span(trace: TraceRecord, decision: Decision, where: str, latency_ms: float) -> SpanRecord:
    span = trace.span("guard", "tool_gate")
    span.attributes.update(
        {
            "pilothouse.guard.scanner": "tool_gate",
            "pilothouse.guard.action": "block" if decision.code else "allow",
            "pilothouse.guard.decision": decision.verdict,
            "pilothouse.guard.latency_ms": round(latency_ms, 3),
            "pilothouse.tool.name": decision.tool,
            "pilothouse.tool.rule": decision.rule,
            "pilothouse.tool.stage": where,
        }
    )
    if decision.code:
        span.attributes["pilothouse.tool.code"] = decision.code
    if decision.risk:
        span.attributes["pilothouse.tool.risk"] = decision.risk
    if decision.grant:
        span.attributes["pilothouse.tool.grant"] = decision.grant
    return span
