"""The one path every tool call of a flow takes (tool steps and agents alike).

In order:
1. the step's (or agent's) allow-list: a tool it was not given is refused;
2. the tool must be registered as a flow tool (`@flow_tool`, tool_registry.py);
3. the project's tool rules (tools/, docs/tools.md), when it has any: the tool registered and granted to the
   caller (the run's key, or the agent by name), its arguments within the grant's rules; a `high`-risk tool
   (by the project's registry or the flow tool's own level) needs a person's approval;
4. the arguments must satisfy the tool's JSON Schema, checked before anything runs;
5. idempotency: a call's key is derived from the run, the step and the call's place in it
   (`StepContext.idempotency_key`); a result recorded under the key (`CheckpointStore.effect`) is reused, so a
   retried or resumed step does not repeat the side effect; otherwise the tool runs (the key is handed to it)
   and its result is recorded before the step goes on;
6. a per-tool timeout;
7. the output is scanned for indirect prompt injection (scanner `injection`, mode `indirect`, role `tool`)
   before it can reach a model: a flagged output is withheld (the tool step fails with `ToolOutputBlocked`, an
   agent gets a notice instead of the text) unless the step asks to only flag it.

Every refusal and every withheld output is an audit event (`tool.refused`, `tool.approval_required`,
`tool.output_blocked`), as the gateway's tool gate records its refusals.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

import orjson
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from pilothouse.flows.spans import SpanWriter, emit
from pilothouse.flows.tool_calls import (
    Screening,
    ToolCallError,
    ToolFailed,
    ToolOutputBlocked,
    ToolRefused,
    ToolResult,
    ToolSite,
    ToolTimeout,
    output_text,
)
from pilothouse.flows.tool_registry import DEFAULT_TOOLS, KEY_PARAMETER, FlowTool, ToolRegistry
from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import ScanContext, Scanner
from pilothouse.tools.arguments import parse_arguments, schema_problem
from pilothouse.tools.decisions import ARGUMENTS_INVALID, NOT_ALLOWED, REQUIRES_APPROVAL, Decision
from pilothouse.tools.rules import ToolRules
from pilothouse.tracing.model import SpanRecord

if TYPE_CHECKING:
    from pilothouse.flows.context import StepContext

__all__ = [
    "Auditor",
    "EffectStore",
    "OutputScreen",
    "Screening",
    "ToolCallError",
    "ToolFailed",
    "ToolOutputBlocked",
    "ToolRefused",
    "ToolResult",
    "ToolRuntime",
    "ToolSite",
    "ToolTimeout",
]

OutputAction = Literal["block", "flag"]
SCAN_THRESHOLD = 0.5
"""The injection scanner's operating point (guards/injection/layered.py)."""
MAX_SCANNED_CHARS = 200_000
SPAN_OUTPUT_CHARS = 4_000


class Auditor(Protocol):
    """Where refusals are recorded: `pilothouse.audit.writer.AuditWriter` (or a recorder in tests)."""

    async def record(
        self, *, actor: str, action: str, target: str | None, project_id: str | None, details: dict[str, Any] | None
    ) -> None: ...


class EffectStore(Protocol):
    """The part of `CheckpointStore` that makes side effects idempotent."""

    def effect(self, run_id: str, key: str) -> Any | None: ...

    def record_effect(self, run_id: str, key: str, result: Any) -> None: ...


@dataclass(slots=True)
class OutputScreen:
    """The indirect-injection scan of tool outputs (the scanner is built on first use: it loads a model)."""

    threshold: float = SCAN_THRESHOLD
    scanner: Scanner | None = None

    def scan(self, text: str) -> tuple[float, tuple[dict[str, Any], ...]]:
        if self.scanner is None:
            self.scanner = build_scanner("injection")
        ctx = ScanContext(role="tool", direction="input", mode="indirect")
        verdict = self.scanner.scan(text[:MAX_SCANNED_CHARS], ctx)
        findings = tuple(
            {"kind": f.kind, "start": f.start, "end": f.end, "score": f.score, "detail": f.detail}
            for f in verdict.findings
        )
        return verdict.score, findings


@dataclass(slots=True)
class ToolRuntime:
    """What tool calls need that outlives one run: the tools, the project rules, the audit log, the scanner."""

    registry: ToolRegistry = field(default_factory=lambda: DEFAULT_TOOLS)
    rules: ToolRules | None = None
    """The projects' tool rules from the store (None: only the allow-lists and the tools' own risk apply)."""
    audit: Auditor | None = None
    screen: OutputScreen = field(default_factory=OutputScreen)
    tracer: SpanWriter | None = None
    """Where each call's `tool` span goes (the server's trace sink); None: calls are only listed on the step's
    span."""

    async def call_tool(self, ctx: StepContext, name: str, args: dict[str, Any]) -> Any:
        """A step's tool call (`ctx.call_tool`): the tool's output, or ToolOutputBlocked when it was withheld."""
        result = await self.call_in(ctx, name, args)
        if result.withheld:
            raise ToolOutputBlocked(result.model_text(), tool=name, details={"screening": result.screening.to_dict()})
        return result.output

    async def call_in(
        self,
        ctx: StepContext,
        name: str,
        args: Any,
        *,
        allowed: Collection[str] | None = None,
        agent: str | None = None,
        on_injection: OutputAction = "block",
        approved: bool | None = None,
    ) -> ToolResult:
        """One call made by the step of `ctx`: its key is the call's place in the step (the tool, its
        arguments, and how many such calls came before in this attempt), so a retry or a resume that makes
        the same calls in the same order reuses their recorded results. The call is listed on the step's span
        (`pilothouse.flow.tool_calls`) and, with a tracer, is a `tool` span under it."""
        parsed, _ = parse_arguments(args)
        digest = hashlib.sha256(orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
        counts: dict[str, int] = ctx.extras.setdefault("tool_call_counts", {})
        place = f"{agent or ''}:{name}:{digest}"
        counts[place] = counts.get(place, 0) + 1
        key = ctx.idempotency_key(f"tool:{place}:{counts[place]}")
        site = ToolSite(ctx.run_id, ctx.project_id, ctx.step, key_id=ctx.created_by, agent=agent)
        if approved is None:
            approved = bool(ctx.approval and ctx.approval.get("decision") == "approved")
        record: dict[str, Any] = {"tool": name, "agent": agent, "key": key}
        ctx.span.attributes.setdefault("pilothouse.flow.tool_calls", []).append(record)
        span = SpanRecord(
            trace_id=ctx.trace_id or "", project_id=ctx.project_id, kind="tool", name=name, parent_id=ctx.span.id
        )
        span.input = {"arguments": parsed if parsed is not None else args}
        span.attributes.update({"pilothouse.tool.idempotency_key": key, "pilothouse.flow.run_id": ctx.run_id})
        if agent:
            span.attributes["pilothouse.agent.name"] = agent
        try:
            result = await self.call(
                site,
                name,
                args,
                key=key,
                effects=ctx.store,
                allowed=allowed,
                approved=approved,
                on_injection=on_injection,
            )
        except ToolCallError as exc:
            record.update(status="error", code=exc.code, error=exc.message)
            span.attributes.update({"pilothouse.tool.code": exc.code, **_rule_of(exc)})
            span.finish(status="error", error=exc.message)
            await emit(self.tracer, flow_name=ctx.flow_name, spans=[span])
            raise
        record.update(
            status="withheld" if result.withheld else "ok",
            arguments=result.arguments,
            output=result.model_text()[:SPAN_OUTPUT_CHARS],
            reused=result.reused,
            risk=result.risk,
            rule=result.decision.rule,
            injection_score=result.screening.score,
            latency_ms=round(result.latency_ms, 3),
        )
        span.attributes.update(result.span_attributes())
        span.output = result.model_text()[:SPAN_OUTPUT_CHARS]
        span.finish()
        await emit(self.tracer, flow_name=ctx.flow_name, spans=[span])
        return result

    async def call(
        self,
        site: ToolSite,
        name: str,
        arguments: Any,
        *,
        key: str,
        effects: EffectStore,
        allowed: Collection[str] | None = None,
        approved: bool = False,
        on_injection: OutputAction = "block",
    ) -> ToolResult:
        """Run one tool call through the steps of the module docstring. Raises ToolRefused (audited),
        ToolTimeout or ToolFailed; a flagged output comes back withheld (`result.withheld`) when
        `on_injection` is `block`."""
        started = time.perf_counter()
        tool, decision, args = await self._admit(site, name, arguments, allowed, approved)
        recorded = await asyncio.to_thread(effects.effect, site.run_id, key)
        if isinstance(recorded, dict) and "output" in recorded:
            output, reused = recorded["output"], True
        else:
            output, reused = await _execute(tool, args, key), False
            await asyncio.to_thread(effects.record_effect, site.run_id, key, {"output": output})
        screening = await self._screen(site, tool.name, output, on_injection)
        return ToolResult(
            tool=tool.name,
            arguments=args,
            output=output,
            key=key,
            reused=reused,
            decision=decision,
            screening=screening,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            risk=decision.risk or tool.risk,
        )

    async def _admit(
        self, site: ToolSite, name: str, arguments: Any, allowed: Collection[str] | None, approved: bool
    ) -> tuple[FlowTool, Decision, dict[str, Any]]:
        """The tool, the decision that allowed it, and its parsed arguments; a refusal is audited and raised."""
        who = f"agent {site.agent!r}" if site.agent else f"step {site.step!r}"
        if allowed is not None and name not in allowed:
            reason = (
                f"tool {name!r} is not on the allow-list of {who} (allowed: {', '.join(sorted(allowed)) or 'none'})"
            )
            await self._refuse(site, Decision("refused", name, reason, "allow_list", NOT_ALLOWED))
        tool = self.registry.get(name)
        if tool is None:
            reason = f"tool {name!r} is not registered as a flow tool (decorate a function with @flow_tool)"
            await self._refuse(site, Decision("refused", name, reason, "registered", NOT_ALLOWED))
        parsed, problem = parse_arguments(arguments)
        if parsed is None:
            reason = f"tool {name!r}: {problem}"
            await self._refuse(site, Decision("refused", name, reason, "arguments", ARGUMENTS_INVALID, risk=tool.risk))
        failed = schema_problem(self.registry.validator(tool), parsed)
        if failed is not None:
            keyword, why = failed
            decision = Decision("refused", name, f"tool {name!r}: {why}", f"schema:{keyword}", ARGUMENTS_INVALID)
            await self._refuse(site, decision)
        decision = await self._project_decision(site, name, parsed, tool)
        if decision.verdict == "refused" or (decision.verdict == "needs_approval" and not approved):
            await self._refuse(site, decision)
        return tool, decision, parsed

    async def _project_decision(self, site: ToolSite, name: str, args: dict[str, Any], tool: FlowTool) -> Decision:
        decision = (
            await self.rules.check(site.caller(), name, args)
            if self.rules is not None
            else Decision("allowed", name, "the project has no tool rules", "unrestricted")
        )
        if decision.verdict == "allowed" and tool.risk == "high":
            reason = f"tool {name!r} is high risk: a person must approve each call"
            return Decision("needs_approval", name, reason, "risk:high", REQUIRES_APPROVAL, risk="high")
        return decision

    async def _refuse(self, site: ToolSite, decision: Decision) -> NoReturn:
        action = "tool.approval_required" if decision.verdict == "needs_approval" else "tool.refused"
        await self._audit(site, action, decision.tool, decision.to_dict())
        raise ToolRefused(decision)

    async def _screen(self, site: ToolSite, tool: str, output: Any, on_injection: OutputAction) -> Screening:
        text = output_text(output)
        if not any(ch.isalpha() for ch in text):
            return Screening(0.0)
        score, findings = await asyncio.to_thread(self.screen.scan, text)
        withheld = score >= self.screen.threshold and on_injection == "block"
        screening = Screening(round(score, 6), findings, withheld)
        if withheld:
            await self._audit(site, "tool.output_blocked", tool, {"tool": tool, **screening.to_dict()})
        return screening

    async def _audit(self, site: ToolSite, action: str, tool: str, details: dict[str, Any]) -> None:
        if self.audit is None:
            return
        await self.audit.record(
            actor=site.key_id or "flow",
            action=action,
            target=tool,
            project_id=site.project_id,
            details={**details, "source": "flow", "run_id": site.run_id, "step": site.step, "agent": site.agent},
        )


def _rule_of(exc: ToolCallError) -> dict[str, Any]:
    return {"pilothouse.tool.rule": exc.decision.rule} if isinstance(exc, ToolRefused) else {}


async def _execute(tool: FlowTool, args: dict[str, Any], key: str) -> Any:
    try:
        kwargs = tool.keyword_arguments(args)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) or "arguments"
        reason = f"tool {tool.name!r}: argument '{where}' cannot be converted to its type"
        raise ToolRefused(Decision("refused", tool.name, reason, "arguments", ARGUMENTS_INVALID)) from None
    if tool.takes_key:
        kwargs[KEY_PARAMETER] = key
    try:
        if tool.is_async:
            result = await asyncio.wait_for(tool.fn(**kwargs), tool.timeout_s)
        else:  # a thread: on timeout the step stops waiting (Python cannot stop the thread itself)
            result = await asyncio.wait_for(asyncio.to_thread(tool.fn, **kwargs), tool.timeout_s)
    except TimeoutError:
        raise ToolTimeout(f"tool {tool.name!r} did not answer within {tool.timeout_s:g}s", tool=tool.name) from None
    except ToolCallError:
        raise
    except Exception as exc:
        raise ToolFailed(f"tool {tool.name!r} failed: {type(exc).__name__}: {exc}", tool=tool.name) from exc
    try:
        return to_jsonable_python(result)
    except PydanticSerializationError:
        raise ToolFailed(
            f"tool {tool.name!r} returned a {type(result).__name__}, which is not JSON data "
            "(return a dict, list, str, number, bool, None or a pydantic model)",
            tool=tool.name,
        ) from None
