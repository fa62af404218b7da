"""What the model calls a metric makes (judges, re-runs of the variant) cost, so a run's cost cap counts them.

The experiment runner opens a `Spend` around each metric's `score` (`metered`); the pipeline transports add the
cost of every call they make to the one in force. Outside a run nothing is metered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Spend", "current_spend", "metered", "record"]


@dataclass(slots=True)
class Spend:
    cost_usd: Decimal = Decimal(0)
    calls: int = 0
    unpriced: int = 0
    """Calls whose cost the gateway could not price (an unknown model): counted, not costed."""


current_spend: ContextVar[Spend | None] = ContextVar("pilothouse_eval_spend", default=None)


def record(cost_usd: Decimal | None) -> None:
    """Add one call's cost to the spend in force (none: not metered)."""
    spend = current_spend.get()
    if spend is None:
        return
    spend.calls += 1
    if cost_usd is None:
        spend.unpriced += 1
    else:
        spend.cost_usd += cost_usd


@contextmanager
def metered() -> Iterator[Spend]:
    spend = Spend()
    token = current_spend.set(spend)
    try:
        yield spend
    finally:
        current_spend.reset(token)
