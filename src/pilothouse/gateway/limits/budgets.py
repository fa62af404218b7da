"""Budgets in the limit store: one counter per budget and period, holding pico-dollars.

A request reserves its worst-case cost on every budget that applies; a hard budget admits it while its
spend plus what is in flight is below the limit, so concurrent requests (on any replica) can overshoot it by
at most one request's worst case. A soft budget only tracks, and alerts once per period when crossed.

A budget's counter is never born from traffic: while it is missing (a new period, or a Redis that lost it)
the limit store refuses to admit against it, and `seed_budget` counts it from the store first: the spend of
the subject's traces this period, plus the calls in flight (the write-ahead ledger) as reservations.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pilothouse.errors import RateLimited
from pilothouse.gateway.limits.periods import PeriodWindow, format_reset, period_window
from pilothouse.gateway.limits.rate_limits import describe_subject
from pilothouse.gateway.limits.store import CounterSpec, Hold, LimitStore, Refusal
from pilothouse.money import from_pico, to_pico, usd
from pilothouse.store import inflight
from pilothouse.store.budgets import Budget, spend_since
from pilothouse.store.engine import Store

GRACE_MS = 86_400_000  # a period's counter outlives it by a day, for late settles and `budgets list`
_PERIOD_WORD = {"day": "daily", "month": "monthly", "total": "total"}


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    spec: CounterSpec
    budget: Budget
    window: PeriodWindow
    limit_pico: int


def budget_key(prefix: str, budget: Budget, window: PeriodWindow) -> str:
    return f"{prefix}budget:{budget.id}:{window.tag}"


def expiry_ms(window: PeriodWindow) -> int | None:
    return None if window.end_ms is None else window.end_ms + GRACE_MS


@lru_cache(maxsize=4096)
def _pico(usd: Decimal) -> int:
    return to_pico(usd)


def budget_check(prefix: str, budget: Budget, now: float, amount_pico: int) -> BudgetCheck:
    window = period_window(budget.period, now)
    limit = _pico(budget.limit_usd)
    spec = CounterSpec(
        budget_key(prefix, budget, window),
        limit if budget.mode == "hard" else None,
        amount_pico,
        expire_at_ms=expiry_ms(window),
        needs_seed=True,
    )
    return BudgetCheck(spec, budget, window, limit)


def describe(budget: Budget) -> str:
    """`the daily budget of $10.00 for key key_abc (bud_123)`."""
    who = describe_subject(budget.scope, budget.subject)
    return f"the {_PERIOD_WORD[budget.period]} {budget.mode} budget of {usd(budget.limit_usd)} for {who} ({budget.id})"


def budget_refusal(check: BudgetCheck, refusal: Refusal, now: float) -> RateLimited:
    end = check.window.end
    in_flight = f" and {usd(refusal.reserved)} reserved by calls in flight" if refusal.reserved else ""
    message = (
        f"Budget exceeded: {describe(check.budget)} has {usd(refusal.used)} spent{in_flight}; "
        f"it resets {'at ' if end is not None else ''}{format_reset(end)}."
    )
    headers = {"x-should-retry": "false"}
    if end is not None:
        headers["retry-after"] = str(max(1, math.ceil(end - now)))
    return RateLimited(message, code="budget_exceeded", headers=headers)


async def budget_status(
    limits: LimitStore, prefix: str, budgets: list[Budget], now: float, *, store: Store | None = None
) -> list[dict[str, Any]]:
    """Each budget with its spend in the current period, what remains and when it resets. With `store`, a
    counter the limit store does not have (lost by Redis, or not used yet this period) is seeded first, so
    the spend shown is the traces' rather than zero."""
    windows = [period_window(b.period, now) for b in budgets]
    keys = [budget_key(prefix, b, w) for b, w in zip(budgets, windows, strict=True)]
    states = await limits.read(keys)
    unseeded = [b for b, state in zip(budgets, states, strict=True) if not state.seeded]
    if store is not None and unseeded:
        for budget in unseeded:
            await seed_budget(limits, store, prefix, budget, now)
        states = await limits.read(keys)
    rows = []
    for budget, window, state in zip(budgets, windows, states, strict=True):
        limit = to_pico(budget.limit_usd)
        rows.append(
            {
                **budget.to_dict(),
                "spent_usd": str(from_pico(state.spent)),
                "reserved_usd": str(from_pico(state.reserved)),
                "remaining_usd": str(from_pico(max(limit - state.spent, 0))),
                "period_start": window.start,
                "resets_at": window.end,
                "exceeded": state.spent >= limit,
            }
        )
    return rows


async def seed_budget(limits: LimitStore, store: Store, prefix: str, budget: Budget, now: float) -> bool:
    """Count a budget counter the limit store does not have (a new budget or period, a server starting on an
    empty memory store, a Redis that lost it) from the store: the subject's traces this period, less the
    settles still pending (their retry adds them), plus the calls in flight as reservations that their
    settles release. No-op (and no query) when the counter is seeded; once across replicas. True when this
    call seeded it."""
    window = period_window(budget.period, now)
    key = budget_key(prefix, budget, window)
    if (await limits.read([key]))[0].seeded:
        return False

    def read() -> tuple[int, list[Hold]]:
        with store.connect() as conn:
            # The ledger before the traces: a call whose trace is stored in between is counted twice (too
            # much, for a moment), never missed.
            calls = [c for c in inflight.list_calls(conn) if c.project_id == budget.project_id]
            spent = spend_since(
                conn, project_id=budget.project_id, scope=budget.scope, subject=budget.subject, since=window.start
            )
        pending = sum(
            rc.actual(c.actual_tokens or 0, c.actual_cost_pico or 0)
            for c in calls
            if c.status == inflight.SETTLE_PENDING
            for rc in c.counters
            if rc.key == key
        )
        holds = [Hold(c.reservation, amount, int(c.expires_at * 1000)) for c, amount in inflight.holds_on(calls, key)]
        return max(to_pico(spent) - pending, 0), holds

    amount, holds = await asyncio.to_thread(read)
    return await limits.seed(key, amount, expire_at_ms=expiry_ms(window), holds=holds)
