"""The cost estimate an experiment is checked against before it starts (costs/estimate.py per variant).

Each variant is estimated on up to `SAMPLE` items spread over the dataset and scaled to all of them, with the
high end of the forecast's range, so a cap is compared with a pessimistic figure. A variant whose model has no
known price makes the estimate unknown; a run with a cap then refuses to start rather than guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from pilothouse.costs.estimate import EstimateSpec, ModelSource, estimate
from pilothouse.evals.experiments.calls import call_body
from pilothouse.evals.experiments.spec import Variant

__all__ = ["SAMPLE", "Estimate", "estimate_experiment"]

SAMPLE = 50


@dataclass(frozen=True, slots=True)
class Estimate:
    total_usd: Decimal | None
    """None: some variant's price is unknown."""
    per_variant: dict[str, str | None]
    unpriced: list[str]


def _sample(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(items) <= SAMPLE:
        return list(items)
    step = len(items) / SAMPLE
    return [items[int(i * step)] for i in range(SAMPLE)]


def _high(forecast: dict[str, Any]) -> Decimal | None:
    cost = forecast.get("cost_usd")
    return None if cost is None else Decimal(cost["high"])


def estimate_experiment(
    conn: Connection, project_id: str, variants: Sequence[Variant], items: Sequence[dict[str, Any]], source: ModelSource
) -> Estimate:
    sample = _sample(items)
    scale = Decimal(len(items)) / Decimal(len(sample)) if sample else Decimal(0)
    per_variant: dict[str, str | None] = {}
    unpriced: list[str] = []
    total: Decimal | None = Decimal(0)
    for variant in variants:
        cost: Decimal | None = Decimal(0)
        if variant.function is not None:
            per_variant[variant.name] = "0"  # the client's function: whatever it spends is not the gateway's
            continue
        if variant.prompt is not None:
            for item in sample:
                found = estimate(conn, project_id, EstimateSpec(prompt=variant.prompt, variables=item["input"]), source)
                high = _high(found["estimates"][0])
                cost = None if high is None or cost is None else cost + high
        else:
            bodies = [call_body(variant, item) for item in sample]
            found = estimate(conn, project_id, EstimateSpec(requests=bodies), source)
            high = _high(found["estimates"][0])
            cost = high
        if cost is None:
            unpriced.append(variant.name)
            per_variant[variant.name] = None
            total = None
            continue
        scaled = (cost * scale).quantize(Decimal("0.000001"))
        per_variant[variant.name] = format(scaled, "f")
        total = None if total is None else total + scaled
    return Estimate(total, per_variant, unpriced)
