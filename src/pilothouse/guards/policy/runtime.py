"""What the guard stages of the gateway hold: the policies in force, and one call's guard state.

`PolicyEngine` is built once per server (server/state.py) over the store: it resolves which policies apply to
a call (`resolve`), runs rules over texts inline or, for long texts, in a worker thread (`run`), and records
blocks in the audit log. `GuardState` is what the input stage resolved for one call and the output stage
reuses: the policies, their rules per direction, the storage redaction, and the fingerprint of the policy
versions (part of the response cache's key, so a policy change never serves an answer stored under another).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pilothouse.errors import ApiError
from pilothouse.guards.policy.active import ActivePolicies
from pilothouse.guards.policy.engine import (
    CompiledPolicy,
    CompiledRule,
    Evaluation,
    GuardBlocked,
    GuardRun,
    RuleRecord,
    ScannerCache,
    applicable,
    evaluate,
)
from pilothouse.guards.policy.spans import record_run
from pilothouse.guards.policy.storage import StoragePlan
from pilothouse.guards.policy.streaming import DEFAULT_WINDOW
from pilothouse.guards.scanner import Direction, ScanContext
from pilothouse.store.engine import Store
from pilothouse.tracing.model import TraceRecord

INLINE_CHARS = 4096
"""Texts up to this many characters in all are scanned on the event loop (microseconds to a few ms); longer
ones in a worker thread, so a long document cannot stall other requests."""


class AuditSink(Protocol):
    """What records runtime blocks (audit/writer.py's AuditWriter)."""

    async def record(
        self, *, actor: str, action: str, target: str | None, project_id: str | None, details: dict[str, Any] | None
    ) -> None: ...


@dataclass(slots=True, eq=False)
class GuardState:
    """The guard work of one call."""

    policies: tuple[CompiledPolicy, ...]
    input: tuple[CompiledRule, ...]
    output: tuple[CompiledRule, ...]
    storage: StoragePlan | None
    fingerprint: str
    """`name@version` of every policy applied, sorted: the cache keys on it."""
    system_prompt: str | None = None
    """The call's system prompt as the caller sent it (output leak checks compare answers with it)."""
    canary: str | None = None
    """The canary planted in what the model was sent (guards/policy/canary.py); None when none was."""
    json_schema: Mapping[str, Any] | None = None
    """The schema of a structured answer (`response_format` `json_schema`)."""
    runs: list[GuardRun] = field(default_factory=list)
    clean: set[tuple[int, str]] = field(default_factory=set)
    """(scanner, text) pairs this call already knows the scanner finds nothing in (scanned clean, or the
    scanner's own redaction of it): storage redaction does not scan them again (engine.Clean)."""

    @classmethod
    def of(cls, policies: Sequence[CompiledPolicy]) -> GuardState:
        return cls(*_plan(tuple(policies)))

    def rules(self, direction: Direction) -> tuple[CompiledRule, ...]:
        return self.input if direction == "input" else self.output

    def output_context(self) -> ScanContext:
        """How the call's answer is scanned: with its system prompt, canary and response schema."""
        if self.system_prompt is None and self.canary is None and self.json_schema is None:
            return _PLAIN_OUTPUT  # immutable, so one serves every call without a system prompt or schema
        return ScanContext(
            role="assistant",
            direction="output",
            system_prompt=self.system_prompt,
            canary=self.canary,
            json_schema=self.json_schema,
        )


_PLAIN_OUTPUT = ScanContext(role="assistant", direction="output")

Plan = tuple[tuple[CompiledPolicy, ...], tuple[CompiledRule, ...], tuple[CompiledRule, ...], StoragePlan | None, str]
"""What a call's GuardState starts from: its policies, their rules per direction, storage plan, fingerprint."""


def _plan(policies: tuple[CompiledPolicy, ...]) -> Plan:
    return (
        policies,
        tuple(r for p in policies for r in p.input),
        tuple(r for p in policies for r in p.output),
        StoragePlan.of(policies),
        ",".join(sorted(p.ref for p in policies)),
    )


PLAN_CACHE_SIZE = 4096
"""Resolved plans kept per engine (one per project's policy set and call scope: key, model, prompt, route)."""


class PolicyEngine:
    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float,
        audit: AuditSink | None = None,
        window: int = DEFAULT_WINDOW,
        cache: ScannerCache | None = None,
    ) -> None:
        self.active = ActivePolicies(store, ttl_s, cache)
        self.audit = audit
        self.window = window
        """The hold-back window of streamed answers, in characters."""
        self._plans: dict[tuple[int, str | None, str | None, str | None, str], tuple[object, Plan | None]] = {}
        """(id of the project's policy tuple, key, model, prompt, route) -> (that tuple, its plan): a call's scope
        is matched once per policy set (a reload makes a new tuple, so a changed policy is never served stale)."""

    async def resolve(
        self, project_id: str, *, key_id: str | None, model: str | None, prompt: str | None, route: str
    ) -> GuardState | None:
        """The guard state of a call, or None when no policy applies to it. A policy in scope that cannot run
        refuses the call (503 `guard_unavailable`): a guard that is down must not let calls through."""
        active = self.active
        policies = await active.get(project_id)
        broken = active.broken_in(project_id) if active.broken else None
        if broken:
            raise ApiError(
                "a guard policy of this project cannot run on this server ("
                + "; ".join(broken[name] for name in sorted(broken))
                + "); fix or disable it",
                status=503,
                code="guard_unavailable",
            )
        key = (id(policies), key_id, model, prompt, route)
        cached = self._plans.get(key)
        if cached is not None and cached[0] is policies:
            plan = cached[1]
        else:
            found = applicable(policies, key_id=key_id, model=model, prompt=prompt, route=route)
            plan = _plan(found) if found else None
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = (policies, plan)
        return None if plan is None else GuardState(*plan)

    async def run(
        self,
        rules: Sequence[CompiledRule],
        texts: Sequence[tuple[str, ScanContext]],
        clean: set[tuple[int, str]] | None = None,
    ) -> list[Evaluation]:
        """Evaluate `rules` over each text (in order, each independently); inline for short texts. `clean`
        collects the (scanner, text) pairs found clean (GuardState.clean)."""
        if not rules or not texts:
            return [Evaluation(text, []) for text, _ in texts]

        def work() -> list[Evaluation]:
            return [evaluate(rules, text, ctx, clean) for text, ctx in texts]

        if sum(len(text) for text, _ in texts) <= INLINE_CHARS:
            return work()
        return await asyncio.to_thread(work)

    async def settle(self, trace: TraceRecord, run: GuardRun) -> None:
        """Record `run` on the trace (guard spans); for a block, also in the audit log, then raise it."""
        record_run(trace, run)
        if run.blocked is not None:
            await self.record_block(trace, run.blocked)
            raise GuardBlocked(run.blocked)

    async def record_block(self, trace: TraceRecord, record: RuleRecord) -> None:
        """A runtime block is an audit event (committed before the caller is answered)."""
        if self.audit is None:
            return
        rule = record.rule
        await self.audit.record(
            actor=trace.api_key_id or "anonymous",
            action="guard.block",
            target=f"{rule.policy}@{rule.version}",
            project_id=trace.project_id,
            details={
                "trace_id": trace.id,
                "direction": rule.direction,
                "rule": rule.index,
                "scanner": rule.rule.scanner,
                "score": round(record.score, 4),
                "threshold": rule.rule.threshold,
                "kinds": sorted(record.kinds),
            },
        )

    async def reload(self) -> None:
        """Apply the store's policies now (after a push or disable on this replica)."""
        await asyncio.to_thread(self.active.reload)

    async def aclose(self) -> None:
        await self.active.aclose()
