"""The admission and settle stages of a model call: rate limits, budgets, loop guards, max_tokens caps.

`Admission.admit` runs after the request is prepared (model resolved, input tokens counted) and before the
cache and the upstream call, for chat and embeddings alike through the `Demand` each prepared call produces
(an embeddings call reserves its input bound and no output; max_tokens caps apply to chat only). It finds
the limits and budgets that apply (an in-process index, no database query), checks the per-key max_tokens
cap, and acquires every rate-limit window, budget reservation and run
counter in ONE LimitStore call (one Redis round trip), all or nothing. A refusal raises the ApiError the
caller sees (429 with Retry-After where waiting helps; budgets and loop guards are audit events). A request
that no limit, budget or run applies to costs a dict lookup and nothing else. A budget counter the limit
store does not have (a new period; a Redis that restarted, was flushed or evicted it) is seeded from the
store's traces and calls in flight before anything is admitted against it (once per key in this process,
once in all: the store's seed is atomic), then the acquire is retried.

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

from pilothouse.audit.writer import AuditWriter, replay_audit_spill
from pilothouse.config import Settings
from pilothouse.errors import ApiError, Forbidden, InvalidRequest
from pilothouse.gateway.limits.budgets import BudgetCheck, budget_check, budget_refusal, describe, seed_budget
from pilothouse.gateway.limits.definitions import Definitions
from pilothouse.gateway.limits.demand import Demand
from pilothouse.gateway.limits.ledger import Ledger
from pilothouse.gateway.limits.loop_guard import RunCheck, run_caps, run_checks, run_refusal
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.periods import format_reset
from pilothouse.gateway.limits.rate_limits import RateCheck, describe_subject, rate_checks, rate_refusal
from pilothouse.gateway.limits.redis_store import RedisLimitStore, safe_url
from pilothouse.gateway.limits.store import CounterSettle, LimitStore, LimitStoreUnavailable, Refusal, WindowSettle
from pilothouse.gateway.limits.worst_case import WorstCase, WorstCaseCalculator
from pilothouse.gateway.prepared import Prepared, PreparedEmbeddings
from pilothouse.gateway.pricing import PriceBook
from pilothouse.money import from_pico, to_pico, usd
from pilothouse.store.budgets import Budget, RateLimit
from pilothouse.store.engine import Store
from pilothouse.store.inflight import InflightCall, ReservedCounter
from pilothouse.tracing.model import TraceRecord

log = logging.getLogger("pilothouse.limits")

Headers = list[tuple[bytes, bytes]]

_ACQUIRE_TRIES = 3  # an unseeded counter is seeded and the acquire retried; a counter lost again meanwhile once more
_READY_TTL_S = 1.0  # /readyz pings the limit store at most once a second
_READY_TIMEOUT_S = 1.0
_KNOWN_MAX = 100_000  # budget counters remembered as used here, to tell a lost counter from a new period's


class LimitsUnavailable(ApiError):
    """503: limits, budgets or runs apply to the request and the limit store cannot check them (fail closed)."""

    status = 503
    type = "api_error"

    def __init__(self, reason: str, *, what: str = "limits and budgets cannot be checked right now") -> None:
        super().__init__(
            f"{what}: {reason}; retry shortly",
            code="limits_unavailable",
            headers={"retry-after": "1"},
        )


class Ticket:
    """What one admitted request holds in the LimitStore, until `settle()`; with a budget or a run cap, also
    its write-ahead record (gateway/limits/ledger.py), written before the call goes upstream."""

    __slots__ = ("_settled", "admission", "budgets", "rates", "record", "reservation", "runs", "trace")

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
        self.record: InflightCall | None = None
        self._settled = False

    async def write_ahead(self, worst: WorstCase) -> None:
        """Make the call durable before it goes upstream: its record, with what it reserved, so a replica that
        dies mid-call leaves it to be charged (not released) by another. A call that cannot be recorded is
        refused (503) and its reservation released: nothing was spent yet. Windows-only requests (rate
        limits) need none: their windows hold the worst case until they age out."""
        ledger = self.admission.ledger
        if ledger is None or (not self.budgets and not self.runs):
            return
        windows = [(c.spec.key, c.spec.amount) for c in self.rates if c.kind == "tpm"]
        counters = [
            ReservedCounter(
                b.spec.key,
                b.spec.amount,
                "budget",
                alert_above=b.limit_pico if b.budget.mode == "soft" else None,
                expire_at_ms=b.spec.expire_at_ms,
            )
            for b in self.budgets
        ]
        counters += [
            ReservedCounter(r.spec.key, r.spec.amount, r.kind, idle_ttl_ms=r.spec.idle_ttl_ms) for r in self.runs
        ]
        reserved = (worst.input_tokens, worst.output_tokens or 0, worst.cost_pico or 0)
        try:
            self.record = await ledger.open(self.trace, self.reservation, reserved, windows, counters)
        except Exception as exc:
            log.error("could not write the in-flight record of trace %s: %s", self.trace.id, exc)
            await self.settle()  # nothing was spent: the reservation goes back
            raise LimitsUnavailable(f"the call could not be recorded in the store ({type(exc).__name__})") from exc

    async def settle(self) -> None:
        """Replace the reservations with what the request actually used (its trace's llm spans): zero after
        an upstream error, the metered tokens of an abandoned stream. A settle the LimitStore does not take
        is kept in the write-ahead ledger and retried until it is. Idempotent; never raises."""
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
        except Exception as exc:
            ledger, record = self.admission.ledger, self.record
            if ledger is None or record is None:  # windows only: they age out; the request itself succeeded
                log.warning("could not settle reservation %s (trace %s): %s", self.reservation, self.trace.id, exc)
                return
            log.warning("could not settle trace %s (%s); kept in the ledger and retried", self.trace.id, exc)
            await ledger.settle_later(record, tokens, cost_pico)
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
        self.ledger: Ledger | None = None  # the write-ahead ledger (server/state.py sets it)
        self.definitions = definitions
        self.worst = worst
        self.audit = audit
        self._hold_ms = int(settings.limits.reservation_ttl_s * 1000)
        self._run_ttl_ms = int(settings.limits.run_ttl_s * 1000)
        self._seeding: dict[str, asyncio.Future[bool]] = {}
        self._known: set[str] = set()
        self._ready_at = 0.0
        self._ready_reason: str | None = None

    # -- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the LimitStore, load the definitions, seed the current period of every budget from the
        traces (for a budget whose counter does not exist yet: a fresh memory store, an emptied Redis), and
        start reloading the definitions periodically. Call before serving. Raises `LimitStoreUnavailable` with
        a one-line message when Redis cannot be reached."""
        try:
            await self.store.ping()
        except LimitStoreUnavailable as exc:
            raise LimitStoreUnavailable(
                f"{exc}: start it or fix PILOTHOUSE_REDIS_URL (or unset it to keep limits and budgets in this process)"
            ) from None
        index = await asyncio.to_thread(self.definitions.reload)
        now = time.time()
        for budget in index.all_budgets():
            await seed_budget(self.store, self.definitions.store, self.prefix, budget, now)
        self.definitions.start()

    async def readiness(self) -> str | None:
        """Why requests that limits or budgets apply to cannot be admitted now (Redis unreachable), or None.
        Checked only with Redis and while some budget or limit is defined; the answer is kept for a second,
        so /readyz stays cheap however often it is polled."""
        if not self.settings.redis_url or self.definitions.index.empty:
            return None
        now = time.monotonic()
        if now < self._ready_at:
            return self._ready_reason
        try:
            await asyncio.wait_for(self.store.ping(), _READY_TIMEOUT_S)
            reason = None
        except (LimitStoreUnavailable, TimeoutError) as exc:
            where = safe_url(self.settings.redis_url)
            what = str(exc) or f"Redis at {where} did not answer within {_READY_TIMEOUT_S:g} s"
            reason = f"{what}: requests that a budget, rate limit or run cap applies to are refused (503)"
        self._ready_at, self._ready_reason = time.monotonic() + _READY_TTL_S, reason
        return reason

    async def aclose(self) -> None:
        await self.definitions.stop()
        await self.store.aclose()
        if self.audit is not None:
            self.audit.close()

    # -- the admission stage ------------------------------------------------------------------------------
    async def admit(self, prep: Prepared | PreparedEmbeddings, trace: TraceRecord, headers: Headers) -> Ticket | None:
        """Refuse the call (raise) or reserve what it may use; None when nothing applies to it."""
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
        if limits and isinstance(prep, Prepared):
            await self._cap_max_tokens(prep, trace, limits)
        need = prep.demand()
        priced = bool(budgets) or (caps is not None and caps.cost_pico is not None)
        worst = self.worst.compute(
            need.entry, need.deployment, need.input_tokens, need.max_tokens, priced=priced, input_bound=need.input_bound
        )
        now = time.time()
        hard = [b for b in budgets if b.mode == "hard"]
        if hard and worst.cost_pico is None:
            await self._unbounded(need, trace, hard[0], worst)
        rates = rate_checks(self.prefix, limits, worst.tokens)
        bchecks = [budget_check(self.prefix, b, now, worst.cost_pico or 0) for b in budgets]
        rchecks = [] if caps is None else run_checks(self.prefix, project, caps, need.call, worst, self._run_ttl_ms)
        reservation = secrets.token_hex(8)
        windows, counters = [c.spec for c in rates], [*(b.spec for b in bchecks), *(r.spec for r in rchecks)]
        try:
            for attempt in range(_ACQUIRE_TRIES):
                refusal = await self.store.acquire(reservation, windows, counters, hold_ms=self._hold_ms)
                if refusal is None or refusal.kind != "unseeded":
                    break
                if attempt == _ACQUIRE_TRIES - 1:
                    raise LimitStoreUnavailable("a budget counter was lost again each time it was seeded")
                await self._seed(bchecks[refusal.index], now)
        except Exception as exc:
            log.error("limit store unavailable (trace %s): %s", trace.id, exc)
            reason = str(exc) if isinstance(exc, LimitStoreUnavailable) else f"the limit store failed ({exc!r})"
            raise LimitsUnavailable(reason) from exc
        if refusal is None and bchecks:
            if len(self._known) > _KNOWN_MAX:
                self._known.clear()
            self._known.update(b.spec.key for b in bchecks)
        if refusal is not None:
            await self._refuse(need, trace, refusal, rates, bchecks, rchecks, worst, now)
        if caps is not None:
            prep.span.attributes["pilothouse.run.id"] = caps.run_id
        ticket = Ticket(self, reservation, trace, rates, bchecks, rchecks)
        await ticket.write_ahead(worst)  # durable before the call goes upstream (gateway/limits/ledger.py)
        return ticket

    async def _seed(self, check: BudgetCheck, now: float) -> None:
        """Seed a budget counter the limit store does not have, once per key however many requests of this
        process ask at the same time (the store makes it once across replicas)."""
        key = check.spec.key
        pending = self._seeding.get(key)
        if pending is None:
            pending = self._seeding[key] = asyncio.ensure_future(self._seed_once(check, now))
            pending.add_done_callback(lambda _: self._seeding.pop(key, None))
        await asyncio.shield(pending)

    async def _seed_once(self, check: BudgetCheck, now: float) -> bool:
        added = await seed_budget(self.store, self.definitions.store, self.prefix, check.budget, now)
        if added and check.spec.key in self._known:  # it was here a moment ago: the limit store lost it
            log.warning(
                "the counter of %s was missing from the limit store (Redis restarted without persistence, was "
                "flushed, or evicted it); re-seeded from the traces and the calls in flight",
                describe(check.budget),
            )
        return added

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
        await self._refused(prep.demand(), trace, "limits.max_tokens_refused", tightest.id, details, error)

    async def _unbounded(self, prep: Demand, trace: TraceRecord, budget: Budget, worst: WorstCase) -> None:
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
        prep: Demand,
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
        self, prep: Demand, trace: TraceRecord, action: str, target: str, details: dict[str, Any], error: ApiError
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
    def _refusal_span(prep: Demand, trace: TraceRecord, what: str, attrs: dict[str, Any]) -> None:
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
