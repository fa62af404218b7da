"""The admission and settle stages of a chat request: rate limits, budgets, loop guards, max_tokens caps.

`Admission.admit` runs after the request is prepared (model resolved, input tokens counted) and before the
cache and the upstream call: it finds the limits and budgets that apply (an in-process index, no database
query), checks the per-key max_tokens cap, and acquires every rate-limit window, budget reservation and run
counter in ONE LimitStore call (one Redis round trip), all or nothing. A refusal raises the ApiError the
caller sees (429 with Retry-After where waiting helps; budgets and loop guards are audit events). A request
that no limit, budget or run applies to costs a dict lookup and nothing else.

`Ticket.settle` runs once as the request's trace is stored (success, error or abandoned stream alike): it
replaces the reservations with the actual tokens and cost from the trace. See docs/cost-control.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path
from typing import Any, NoReturn

from pilothouse.config import Settings
from pilothouse.errors import ApiError, Forbidden, InvalidRequest
from pilothouse.gateway.limits.audit_writer import AuditWriter, replay_audit_spill
from pilothouse.gateway.limits.budgets import BudgetCheck, budget_check, budget_refusal, describe, seed_budget
from pilothouse.gateway.limits.definitions import Definitions
from pilothouse.gateway.limits.loop_guard import RunCheck, run_caps, run_checks, run_refusal
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.money import from_pico, to_pico, usd
from pilothouse.gateway.limits.periods import format_reset
from pilothouse.gateway.limits.rate_limits import RateCheck, describe_subject, rate_checks, rate_refusal
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import CounterSettle, LimitStore, Refusal, WindowSettle
from pilothouse.gateway.limits.worst_case import WorstCase, WorstCaseCalculator
from pilothouse.gateway.pipeline import Prepared
from pilothouse.gateway.pricing import PriceBook
from pilothouse.gateway.tokens import estimate_messages_tokens
from pilothouse.store.budgets import Budget, RateLimit
from pilothouse.store.engine import Store
from pilothouse.tracing.model import TraceRecord

log = logging.getLogger("pilothouse.limits")

Headers = list[tuple[bytes, bytes]]


class LimitsUnavailable(ApiError):
    status = 503
    type = "api_error"


class Ticket:
    """What one admitted request holds in the LimitStore, until `settle()`."""

    __slots__ = ("_settled", "admission", "budgets", "rates", "reservation", "runs", "trace")

    def __init__(
        self,
        admission: Admission,
        reservation: str,
        trace: TraceRecord,
        rates: list[RateCheck],
        budgets: list[BudgetCheck],
        runs: list[RunCheck],
    ) -> None:
        self.admission = admission
        self.reservation = reservation
        self.trace = trace
        self.rates = rates
        self.budgets = budgets
        self.runs = runs
        self._settled = False

    async def settle(self) -> None:
        """Replace the reservations with what the request actually used (its trace's llm spans): zero after
        an upstream error, the metered tokens of an abandoned stream. Idempotent; never raises."""
        if self._settled:
            return
        self._settled = True
        tin, tout, cost = self.trace.totals()
        tokens, cost_pico = tin + tout, to_pico(cost)
        windows = [
            WindowSettle(c.spec.key, c.spec.amount, tokens)
            for c in self.rates
            if c.kind == "tpm" and c.spec.amount != tokens
        ]
        counters = [
            CounterSettle(
                b.spec.key,
                cost_pico,
                alert_above=b.limit_pico if b.budget.mode == "soft" else None,
                expire_at_ms=b.spec.expire_at_ms,
            )
            for b in self.budgets
        ]
        actual = {"calls": 1, "repeats": 1, "tokens": tokens, "cost": cost_pico}
        counters += [CounterSettle(r.spec.key, actual[r.kind], idle_ttl_ms=r.spec.idle_ttl_ms) for r in self.runs]
        if not windows and not counters:
            return  # request limits only (or tokens exactly as reserved): nothing to correct
        try:
            crossed = await self.admission.store.settle(self.reservation, windows, counters)
        except Exception as exc:  # the reservation is released by its hold time; the request itself succeeded
            log.warning("could not settle reservation %s (trace %s): %s", self.reservation, self.trace.id, exc)
            return
        for index in crossed:
            if index < len(self.budgets):
                await self.admission.soft_exceeded(self.budgets[index], self.trace, cost_pico)


class Admission:
    def __init__(
        self,
        settings: Settings,
        store: LimitStore,
        definitions: Definitions,
        worst: WorstCaseCalculator,
        audit: AuditWriter | None,
    ) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.prefix = settings.limits.redis_prefix
        self.store = store
        self.definitions = definitions
        self.worst = worst
        self.audit = audit
        self._hold_ms = int(settings.limits.reservation_ttl_s * 1000)
        self._run_ttl_ms = int(settings.limits.run_ttl_s * 1000)

    # -- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the LimitStore, load the definitions, seed the current period of every budget from the
        traces (for a budget whose counter does not exist yet: a fresh memory store, an emptied Redis), and
        start reloading the definitions periodically. Call before serving."""
        if isinstance(self.store, RedisLimitStore):
            try:
                await self.store.ping()
            except Exception as exc:
                raise RuntimeError(
                    f"cannot reach Redis for limits and budgets (PILOTHOUSE_REDIS_URL): {exc} Start Redis, or unset "
                    "PILOTHOUSE_REDIS_URL to keep the limit state in this process."
                ) from exc
        index = await asyncio.to_thread(self.definitions.reload)
        now = time.time()
        for budget in index.all_budgets():
            await seed_budget(self.store, self.definitions.store, self.prefix, budget, now)
        self.definitions.start()

    async def aclose(self) -> None:
        await self.definitions.stop()
        await self.store.aclose()
        if self.audit is not None:
            self.audit.close()

    # -- the admission stage ------------------------------------------------------------------------------
    async def admit(self, prep: Prepared, trace: TraceRecord, headers: Headers) -> Ticket | None:
        """Refuse the request (raise) or reserve what it may use; None when nothing applies to it."""
        index = self.definitions.index
        caps = run_caps(self.limits, headers)
        if index.empty and caps is None:
            return None
        project = trace.project_id
        limits: list[RateLimit] = []
        budgets: list[Budget] = []
        if not index.empty:
            subjects = [(project, "key", trace.api_key_id or ""), (project, "project", project)]
            for subject in (*subjects, (project, "model", prep.entry.name)):
                found = index.limits.get(subject)
                if found is not None:
                    limits.append(found)
            if trace.user_id:
                subjects.append((project, "user", trace.user_id))
            if trace.prompt_name:
                subjects.append((project, "prompt", trace.prompt_name))
            for subject in subjects:
                budgets.extend(index.budgets.get(subject, ()))
        if not limits and not budgets and caps is None:
            return None
        if limits:
            await self._cap_max_tokens(prep, trace, limits)
        tokens_in = prep.input_tokens if prep.input_tokens is not None else estimate_messages_tokens(prep.body.messages)
        priced = bool(budgets) or (caps is not None and caps.cost_pico is not None)
        worst = self.worst.compute(prep.entry, prep.deployment, tokens_in, prep.body.max_tokens, priced=priced)
        now = time.time()
        hard = [b for b in budgets if b.mode == "hard"]
        if hard and worst.cost_pico is None:
            await self._unbounded(prep, trace, hard[0], worst)
        rates = rate_checks(self.prefix, limits, worst.tokens)
        bchecks = [budget_check(self.prefix, b, now, worst.cost_pico or 0) for b in budgets]
        rchecks = [] if caps is None else run_checks(self.prefix, project, caps, prep.body, worst, self._run_ttl_ms)
        reservation = secrets.token_hex(8)
        try:
            refusal = await self.store.acquire(
                reservation,
                [c.spec for c in rates],
                [*(b.spec for b in bchecks), *(r.spec for r in rchecks)],
                hold_ms=self._hold_ms,
            )
        except Exception as exc:
            log.error("limit store unavailable (trace %s): %s", trace.id, exc)
            raise LimitsUnavailable(
                "limits and budgets cannot be checked right now (the limit store is unavailable); retry shortly",
                code="limits_unavailable",
                headers={"retry-after": "1"},
            ) from exc
        if refusal is not None:
            await self._refuse(prep, trace, refusal, rates, bchecks, rchecks, worst, now)
        if caps is not None:
            prep.span.attributes["pilothouse.run.id"] = caps.run_id
        return Ticket(self, reservation, trace, rates, bchecks, rchecks)

    async def _cap_max_tokens(self, prep: Prepared, trace: TraceRecord, limits: list[RateLimit]) -> None:
        """Requests above a key's (project's, model's) max_tokens cap are refused; requests without max_tokens
        get the cap as their max_tokens (recorded on the span)."""
        capped = [lim for lim in limits if lim.max_tokens is not None]
        if not capped:
            return
        tightest = min(capped, key=lambda lim: lim.max_tokens or 0)
        cap = tightest.max_tokens
        assert cap is not None
        asked = prep.body.max_tokens
        if asked is None:
            prep.body.max_tokens = cap
            prep.request.params["max_tokens"] = cap
            prep.span.attributes["gen_ai.request.max_tokens"] = cap
            prep.span.attributes["pilothouse.limits.max_tokens_cap"] = cap
            return
        if asked <= cap:
            return
        who = describe_subject(tightest.scope, tightest.subject)
        error = InvalidRequest(
            f"max_tokens {asked} is above the cap of {cap} for {who} (limit {tightest.id}); send max_tokens <= {cap}",
            param="max_tokens",
            code="max_tokens_above_cap",
        )
        details = {"limit_id": tightest.id, "cap": cap, "requested": asked, "model": prep.entry.name}
        await self._refused(prep, trace, "limits.max_tokens_refused", tightest.id, details, error)

    async def _unbounded(self, prep: Prepared, trace: TraceRecord, budget: Budget, worst: WorstCase) -> None:
        if worst.output_tokens is None:
            error: ApiError = InvalidRequest(
                f"{describe(budget)} applies to this request, and its cost has no upper bound: '{prep.entry.name}' "
                "has no known max_tokens limit. Send max_tokens.",
                param="max_tokens",
                code="max_tokens_required",
            )
        else:
            error = Forbidden(
                f"{describe(budget)} applies to this request, but the price of '{prep.entry.name}' "
                f"({prep.deployment.provider}/{prep.deployment.model}) is unknown, so its cost cannot be bounded. "
                "Set input_price_per_mtok and output_price_per_mtok on the deployment in the configuration.",
                code="budget_unenforceable",
            )
        details = {"budget_id": budget.id, "reason": error.code, "model": prep.entry.name}
        await self._refused(prep, trace, "budget.refused", budget.id, details, error)

    async def _refuse(
        self,
        prep: Prepared,
        trace: TraceRecord,
        refusal: Refusal,
        rates: list[RateCheck],
        budgets: list[BudgetCheck],
        runs: list[RunCheck],
        worst: WorstCase,
        now: float,
    ) -> None:
        if refusal.kind == "window":
            rate = rates[refusal.index]
            error = rate_refusal(rate, refusal)
            attrs = {"pilothouse.limits.limit_id": rate.limit.id, "pilothouse.limits.kind": rate.kind}
            self._refusal_span(prep, trace, "rate_limit", attrs)
            raise error
        if refusal.index < len(budgets):
            check = budgets[refusal.index]
            details: dict[str, Any] = {
                "budget_id": check.budget.id,
                "scope": check.budget.scope,
                "subject": check.budget.subject,
                "period": check.budget.period,
                "limit_usd": str(check.budget.limit_usd),
                "spent_usd": str(from_pico(refusal.used)),
                "reserved_usd": str(from_pico(refusal.reserved)),
                "worst_case_usd": str(from_pico(worst.cost_pico or 0)),
                "resets": format_reset(check.window.end),
                "model": prep.entry.name,
            }
            await self._refused(
                prep, trace, "budget.refused", check.budget.id, details, budget_refusal(check, refusal, now)
            )
        run = runs[refusal.index - len(budgets)]
        details = {
            "run_id": run.caps.run_id,
            "kind": run.kind,
            "cap": usd(run.spec.limit or 0) if run.kind == "cost" else run.spec.limit,
            "used": refusal.used + refusal.reserved,
            "model": prep.entry.name,
        }
        await self._refused(prep, trace, "loop_guard.refused", run.caps.run_id, details, run_refusal(run, refusal))

    async def _refused(
        self, prep: Prepared, trace: TraceRecord, action: str, target: str, details: dict[str, Any], error: ApiError
    ) -> NoReturn:
        """Record a refusal on the trace and in the audit log (committed before the caller is answered)."""
        self._refusal_span(prep, trace, action, {f"pilothouse.limits.{k}": v for k, v in details.items()})
        if self.audit is not None:
            await self.audit.record(
                actor=trace.api_key_id or "anonymous",
                action=action,
                target=target,
                project_id=trace.project_id,
                details={**details, "trace_id": trace.id, "message": error.message},
            )
        raise error

    @staticmethod
    def _refusal_span(prep: Prepared, trace: TraceRecord, what: str, attrs: dict[str, Any]) -> None:
        """No call was made: the trace gets an `admission` guard span (the server marks it as the error)
        instead of the llm span the preparation opened."""
        if prep.span in trace.spans and prep.span.ended_at is None:
            trace.spans.remove(prep.span)
        span = trace.span("guard", "admission")
        span.model = prep.entry.name
        span.attributes.update(attrs)
        span.attributes["pilothouse.limits.refused_by"] = what

    async def soft_exceeded(self, check: BudgetCheck, trace: TraceRecord, cost_pico: int) -> None:
        """A soft budget was crossed (reported once per period): an alert in the log and an audit event."""
        message = f"soft budget exceeded: {describe(check.budget)}; the request that crossed it: trace {trace.id}"
        log.warning(message)
        if self.audit is None:
            return
        try:
            await self.audit.record(
                actor=trace.api_key_id or "anonymous",
                action="budget.soft_exceeded",
                target=check.budget.id,
                project_id=trace.project_id,
                details={
                    "scope": check.budget.scope,
                    "subject": check.budget.subject,
                    "period": check.budget.period,
                    "limit_usd": str(check.budget.limit_usd),
                    "trace_id": trace.id,
                    "request_cost_usd": str(from_pico(cost_pico)),
                },
            )
        except Exception:
            log.exception("could not record the soft budget alert for %s", check.budget.id)


def build_admission(settings: Settings, store: Store, prices: PriceBook, catalog: dict[str, Any]) -> Admission:
    """The admission stage of a server: the Redis LimitStore with PILOTHOUSE_REDIS_URL, else in process."""
    limit_store: LimitStore = RedisLimitStore.from_url(settings.redis_url) if settings.redis_url else MemoryLimitStore()
    spill = Path(settings.data_dir) / "audit-unstored.jsonl"
    replayed = replay_audit_spill(store, spill)
    if replayed:
        log.warning("appended %d audit events that an earlier run could not store", replayed)
    return Admission(
        settings,
        limit_store,
        Definitions(store, settings.limits.definitions_ttl_s),
        WorstCaseCalculator(prices, catalog),
        AuditWriter(store, spill_path=spill),
    )
