"""Deterministic metrics on what an answer cost: `max_tokens`, `max_latency_ms`, `max_cost_usd`. An unknown
measurement never passes a budget."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score
from pilothouse.evals.metrics.options import number


class _Budget:
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    @classmethod
    def from_spec(cls, spec: Any) -> dict[str, Any]:
        """In a tests file the value is the limit."""
        return spec if isinstance(spec, dict) else {"limit": spec}


class MaxTokens(_Budget):
    """The output used at most N tokens (as the gateway metered them)."""

    name: ClassVar[str] = "max_tokens"

    def __init__(self, limit: Any) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise MetricSpecError(f"the value must be a positive integer, got {limit!r}")
        self.limit = limit
        self.label = f"max_tokens {limit}"

    def score(self, example: Example) -> Score:
        if example.output_tokens is None:
            return Score(self.name, False, "the output token count is unknown", False)
        ok = example.output_tokens <= self.limit
        plural = "" if example.output_tokens == 1 else "s"
        return Score(self.name, ok, f"{example.output_tokens} output token{plural}", ok)


class MaxLatency(_Budget):
    """The model call took at most N milliseconds (the gateway's measured latency of the call)."""

    name: ClassVar[str] = "max_latency_ms"

    def __init__(self, limit: Any) -> None:
        self.limit = number(limit, "the value", allow_zero=False)
        self.label = f"max_latency_ms {self.limit}"

    def score(self, example: Example) -> Score:
        if example.latency_ms is None:
            return Score(self.name, False, "the latency is unknown", False)
        ok = Decimal(str(example.latency_ms)) <= self.limit
        return Score(self.name, ok, f"{example.latency_ms:.0f} ms", ok)


class MaxCost(_Budget):
    """The call cost at most N US dollars; fails when the model's price is unknown (cost not recorded)."""

    name: ClassVar[str] = "max_cost_usd"

    def __init__(self, limit: Any) -> None:
        self.limit = number(limit, "the value", allow_zero=True)
        self.label = f"max_cost_usd {self.limit}"

    def score(self, example: Example) -> Score:
        if example.cost_usd is None:
            return Score(self.name, False, "the cost is unknown (no price for this model)", False)
        ok = example.cost_usd <= self.limit
        return Score(self.name, ok, f"${format(example.cost_usd, 'f')}", ok)
