"""A run's budget: limits on cost, tokens, model calls, steps and wall time, and what the run has spent.

Limits come from the flow (`Flow(..., budget={...})`), overridable per run; what was spent travels with every
checkpoint commit (`RunRecord.spent`), so a resumed run keeps counting where it stopped. Cost is an exact
`Decimal` here and a decimal string in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pilothouse.flows.errors import BudgetExceeded
from pilothouse.money import usd_string

LIMITS: tuple[str, ...] = ("cost_usd", "tokens", "model_calls", "steps", "wall_s")


def check_limits(budget: Mapping[str, Any]) -> dict[str, Any]:
    """The budget as stored (cost as a decimal string), or ValueError naming the bad entry."""
    out: dict[str, Any] = {}
    for name, value in budget.items():
        if name not in LIMITS:
            raise ValueError(f"unknown budget limit {name!r}: use {', '.join(LIMITS)}")
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError(f"budget limit {name!r} must be a number")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"budget limit {name!r} must be a number, not {value!r}") from exc
        if not number.is_finite() or number < 0:
            raise ValueError(f"budget limit {name!r} must be a finite number >= 0")
        if name == "cost_usd":
            out[name] = usd_string(number)
        elif name == "wall_s":
            out[name] = float(number)
        else:
            if number != number.to_integral_value():
                raise ValueError(f"budget limit {name!r} must be a whole number")
            out[name] = int(number)
    return out


class RunBudget:
    """Limits and spend of one run while a worker executes it."""

    def __init__(self, limits: Mapping[str, Any], spent: Mapping[str, Any]) -> None:
        self.limits = dict(limits)
        self.cost_usd = Decimal(str(spent.get("cost_usd", "0")))
        self.tokens = int(spent.get("tokens", 0))
        self.model_calls = int(spent.get("model_calls", 0))
        self.steps = int(spent.get("steps", 0))
        self.wall_s = float(spent.get("wall_s", 0.0))
        self.visits: dict[str, int] = {str(k): int(v) for k, v in dict(spent.get("visits") or {}).items()}

    def spent(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cost_usd": usd_string(self.cost_usd),
            "tokens": self.tokens,
            "model_calls": self.model_calls,
            "steps": self.steps,
            "wall_s": round(self.wall_s, 6),
        }
        if self.visits:
            out["visits"] = dict(self.visits)
        return out

    def remaining(self) -> dict[str, Any]:
        """What is left under each limit that is set (never below zero)."""
        left: dict[str, Any] = {}
        for name, limit in self.limits.items():
            if name == "cost_usd":
                left[name] = max(Decimal(0), Decimal(str(limit)) - self.cost_usd)
            elif name == "wall_s":
                left[name] = max(0.0, float(limit) - self.wall_s)
            else:
                left[name] = max(0, int(limit) - int(getattr(self, name)))
        return left

    def wall_left(self) -> float | None:
        limit = self.limits.get("wall_s")
        return None if limit is None else max(0.0, float(limit) - self.wall_s)

    def check(self) -> None:
        """Raise BudgetExceeded when any limit is already reached (before a step or a model call)."""
        for name, left in self.remaining().items():
            if left <= 0:
                raise BudgetExceeded(
                    f"run budget {name} exhausted: spent {self._spent_of(name)} of {self.limits[name]}", limit=name
                )

    def check_step(self) -> None:
        """Before a step: the step limit must leave room for one more, the others must not be reached."""
        limit = self.limits.get("steps")
        if limit is not None and self.steps >= int(limit):
            raise BudgetExceeded(f"run budget steps exhausted: {self.steps} of {limit} steps run", limit="steps")
        self.check()

    def charge(self, *, cost_usd: Decimal | float | str = 0, tokens: int = 0, model_calls: int = 0) -> None:
        """Add a model call's spend; raises BudgetExceeded when it takes the run over a limit."""
        self.cost_usd += Decimal(str(cost_usd))
        self.tokens += int(tokens)
        self.model_calls += int(model_calls)
        for name in ("cost_usd", "tokens", "model_calls"):
            limit = self.limits.get(name)
            if limit is not None and Decimal(str(self._spent_of(name))) > Decimal(str(limit)):
                raise BudgetExceeded(f"run budget {name} exceeded: spent {self._spent_of(name)} of {limit}", limit=name)

    def _spent_of(self, name: str) -> Any:
        if name == "cost_usd":
            return usd_string(self.cost_usd)
        return getattr(self, name)
