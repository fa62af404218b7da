"""The cost estimate an experiment is checked against before it starts (costs/estimate.py per variant).

Each variant is estimated on up to `SAMPLE` items spread over the dataset and scaled to all of them, with the
high end of the forecast's range, so a cap is compared with a pessimistic figure. A variant whose model has no
known price makes the estimate unknown; a run with a cap then refuses to start rather than guess.

The metrics' own calls are part of it: a metric that re-runs the variant (`variant_calls`, counterfactual_bias)
multiplies the variant's cost, and a judge (`planned_requests`, llm_judge and coherence) adds its requests for
each variant's answers, priced on the judge's model with the item's expected answer standing in for the answer
(retries of unreadable verdicts are not foreseen: the hard cap still stops the run before it passes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from pilothouse.costs.estimate import EstimateSpec, ModelSource, estimate
from pilothouse.evals.experiments.calls import Answer, call_body, example_for
from pilothouse.evals.experiments.spec import Variant
from pilothouse.evals.metrics.base import Metric

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


def _judging(
    conn: Connection, project_id: str, metrics: Sequence[Metric], sample: list[dict[str, Any]], source: ModelSource
) -> tuple[Decimal | None, list[str]]:
    """What the judges cost for one variant's answers to the sample; None and the judges when unpriced."""
    total: Decimal | None = Decimal(0)
    unpriced = []
    for metric in metrics:
        planned = getattr(metric, "planned_requests", None)
        if not callable(planned) or not sample:
            continue
        bodies = [
            body
            for item in sample
            for body in planned(
                example_for(item, Answer(str(item.get("expected") or ""), None, None, None, None, None, None))
            )
        ]
        found = estimate(conn, project_id, EstimateSpec(requests=bodies), source)
        high = _high(found["estimates"][0])
        if high is None:
            unpriced.append(f"judge {metric.label}")
        total = None if high is None or total is None else total + high
    return total, unpriced


def estimate_experiment(
    conn: Connection,
    project_id: str,
    variants: Sequence[Variant],
    items: Sequence[dict[str, Any]],
    source: ModelSource,
    metrics: Sequence[Metric] = (),
) -> Estimate:
    sample = _sample(items)
    calls_per_item = 1 + sum(int(getattr(m, "variant_calls", 0)) for m in metrics)
    judging, unpriced_judges = _judging(conn, project_id, metrics, sample, source)
    scale = Decimal(len(items)) / Decimal(len(sample)) if sample else Decimal(0)
    per_variant: dict[str, str | None] = {}
    unpriced: list[str] = []
    total: Decimal | None = Decimal(0)
    for variant in variants:
        cost: Decimal | None = Decimal(0)
        if variant.function is not None:
            # the client's function: whatever it spends is not the gateway's; judging its answers is
            scaled_judging = None if judging is None else (judging * scale).quantize(Decimal("0.000001"))
            per_variant[variant.name] = None if scaled_judging is None else format(scaled_judging, "f")
            total = None if total is None or scaled_judging is None else total + scaled_judging
            if scaled_judging is None:
                unpriced.append(variant.name)
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
        cost = None if cost is None or judging is None else cost * calls_per_item + judging
        if cost is None:
            unpriced.append(variant.name)
            per_variant[variant.name] = None
            total = None
            continue
        scaled = (cost * scale).quantize(Decimal("0.000001"))
        per_variant[variant.name] = format(scaled, "f")
        total = None if total is None else total + scaled
    return Estimate(total, per_variant, unpriced + unpriced_judges)
