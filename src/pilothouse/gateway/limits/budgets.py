"""Budgets in the limit store: one counter per budget and period, holding pico-dollars.

A request reserves its worst-case cost on every budget that applies; a hard budget admits it while its
spend plus what is in flight is below the limit, so concurrent requests (on any replica) can overshoot it by
at most one request's worst case. A soft budget only tracks, and alerts once per period when crossed.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pilothouse.errors import RateLimited
from pilothouse.gateway.limits.money import from_pico, to_pico, usd
from pilothouse.gateway.limits.periods import PeriodWindow, format_reset, period_window
from pilothouse.gateway.limits.rate_limits import describe_subject
from pilothouse.gateway.limits.store import CounterSpec, LimitStore, Refusal
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


async def budget_status(store: LimitStore, prefix: str, budgets: list[Budget], now: float) -> list[dict[str, Any]]:
    """Each budget with its spend in the current period, what remains and when it resets."""
    windows = [period_window(b.period, now) for b in budgets]
    states = await store.read([budget_key(prefix, b, w) for b, w in zip(budgets, windows, strict=True)])
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


async def seed_budget(
    limits: LimitStore, store: Store, prefix: str, budget: Budget, now: float, *, new: bool = False
) -> bool:
    """Count what the budget's subject already spent this period (from its traces) into its counter: always
    for a `new` budget, otherwise only if the counter has never been seeded or used (a server starting on
    an empty limit store). True when it added the spend."""
    window = period_window(budget.period, now)
    key = budget_key(prefix, budget, window)
    if not new and (await limits.read([key]))[0].seeded:
        return False  # no query of the traces

    def read() -> int:
        with store.connect() as conn:
            spent = spend_since(
                conn, project_id=budget.project_id, scope=budget.scope, subject=budget.subject, since=window.start
            )
        return to_pico(spent)

    amount = await asyncio.to_thread(read)
    return await limits.seed(key, amount, expire_at_ms=expiry_ms(window), force=new)
