"""Reconciliation: the store's ledger (traces) against the budget counters in Redis, drift reported and fixed.

The traces are the ledger: a budget's spend this period is the sum of its subject's trace costs
(`spend_since`). Redis should hold that, give or take the calls between their settle and their trace:

* a call in flight (write-ahead record `in_flight`) may already be settled in Redis while its trace is not
  stored yet: Redis may be above the ledger by up to what such calls reserved;
* a `settle_pending` call's trace is stored but Redis has not taken its settle yet: Redis may be below the
  ledger by up to those calls' actual cost.

So Redis's `spent` should lie in [ledger - pending, ledger + in flight]; outside it is drift (a settle that
never arrived, a settle counted twice, a counter re-created from zero). The fix moves `spent` to the nearest
end of that band, never further: reservations of calls in flight are left alone. It is a compare-and-set on
the value read before the ledger was read, so a settle landing meanwhile makes the fix wait for the next
pass instead of losing that settle. Counters Redis does not have are left to the seeding of the admission.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from pilothouse.gateway.limits.budgets import budget_key, describe
from pilothouse.gateway.limits.periods import period_window
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import LimitStore
from pilothouse.money import from_pico, to_pico, usd
from pilothouse.store import inflight
from pilothouse.store.budgets import Budget, spend_since
from pilothouse.store.engine import Store

log = logging.getLogger("pilothouse.ledger")

# KEYS: the counter hash. ARGV: the `spent` read before the ledger, the corrected `spent`.
# Returns -1: no such counter; 0: `spent` changed since it was read (nothing done); 1: corrected.
_CORRECT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local spent = redis.call('HGET', KEYS[1], 'spent') or '0'
if spent ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'spent', ARGV[2])
return 1
"""

Outcome = Literal["ok", "corrected", "drift", "changed", "missing"]


@dataclass(frozen=True, slots=True)
class Drift:
    """One budget's counter against the ledger (pico-dollars). `drift`: how far `spent` was outside the band
    (positive: Redis counted more than the ledger allows; negative: less)."""

    budget: Budget
    key: str
    spent: int
    ledger: int
    pending: int
    in_flight: int
    drift: int
    outcome: Outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_id": self.budget.id,
            "budget": describe(self.budget),
            "redis_spent_usd": str(from_pico(self.spent)),
            "ledger_usd": str(from_pico(self.ledger)),
            "settle_pending_usd": str(from_pico(self.pending)),
            "in_flight_usd": str(from_pico(self.in_flight)),
            "drift_usd": str(from_pico(self.drift)),
            "outcome": self.outcome,
        }

    def line(self) -> str:
        fixed = {"corrected": "corrected", "drift": "not corrected", "changed": "changed meanwhile, next pass"}
        return (
            f"budget drift: {describe(self.budget)}: Redis has {usd(self.spent)}, the ledger {usd(self.ledger)} "
            f"({usd(self.pending)} settle pending, {usd(self.in_flight)} in flight): off by {usd(self.drift)}, "
            f"{fixed.get(self.outcome, self.outcome)}"
        )


async def reconcile(
    store: Store, limits: LimitStore, prefix: str, budgets: list[Budget], now: float, *, fix: bool = True
) -> list[Drift]:
    """One pass over `budgets` (their current period). Only Redis holds state apart from this process: with
    the in-process store the counters are seeded from the ledger at start and live with it."""
    if not isinstance(limits, RedisLimitStore) or not budgets:
        return []
    keys = [budget_key(prefix, b, period_window(b.period, now)) for b in budgets]
    before = await limits.read(keys)  # first: a settle after this read makes the compare-and-set fail

    def ledger() -> tuple[list[int], list[inflight.InflightCall]]:
        with store.connect() as conn:
            calls = inflight.list_calls(conn)
            spent = [
                to_pico(
                    spend_since(
                        conn,
                        project_id=b.project_id,
                        scope=b.scope,
                        subject=b.subject,
                        since=period_window(b.period, now).start,
                    )
                )
                for b in budgets
            ]
        return spent, calls

    spent_ledger, calls = await asyncio.to_thread(ledger)
    correct = limits.client.register_script(_CORRECT)
    report: list[Drift] = []
    for budget, key, state, booked in zip(budgets, keys, before, spent_ledger, strict=True):
        in_flight = sum(amount for _, amount in inflight.holds_on(calls, key))
        pending = sum(
            rc.actual(c.actual_tokens or 0, c.actual_cost_pico or 0)
            for c in calls
            if c.status == inflight.SETTLE_PENDING
            for rc in c.counters
            if rc.key == key
        )
        if not state.seeded and not state.spent and not state.reserved:  # Redis lost it or never had it
            report.append(Drift(budget, key, 0, booked, pending, in_flight, 0, "missing"))
            continue
        target = min(max(state.spent, booked - pending), booked + in_flight)
        drift = state.spent - target
        outcome: Outcome = "ok"
        if drift:
            outcome = "drift"
            if fix:
                done = int(await correct(keys=[key], args=[str(state.spent), str(target)]))
                outcome = "corrected" if done == 1 else "changed" if done == 0 else "missing"
        item = Drift(budget, key, state.spent, booked, pending, in_flight, drift, outcome)
        if drift and outcome != "missing":
            log.warning(item.line())
        report.append(item)
    return report
