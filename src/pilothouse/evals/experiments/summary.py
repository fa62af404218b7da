"""Aggregates of an experiment's results, and paired comparisons of two variants.

Per variant and metric: items judged and not judged, the mean with its BCa bootstrap interval, and the pass
rate where the metric has a threshold; per variant: errors, cost, latency percentiles. A comparison pairs the
two variants on the items both judged, per metric (stats/paired.py), and corrects the p-values for the number of
metrics compared (Holm by default), so ten metrics do not make a "significant" difference by luck.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from pilothouse.stats.bootstrap import bootstrap_interval
from pilothouse.stats.multiple import adjust
from pilothouse.stats.paired import paired_comparison
from pilothouse.store.experiments import ResultRow

__all__ = ["compare", "summarise"]


def _number(score: dict[str, Any]) -> float | None:
    value = score.get("value")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _metric_summary(scores: list[dict[str, Any]], *, seed: int) -> dict[str, Any]:
    numbers = [n for n in (_number(s) for s in scores) if n is not None]
    verdicts = [s["passed"] for s in scores if s.get("passed") is not None]
    categories: dict[str, int] = defaultdict(int)
    for s in scores:
        if isinstance(s.get("value"), str):
            categories[s["value"]] += 1
    return {
        "judged": sum(1 for s in scores if s.get("value") is not None),
        "unjudged": sum(1 for s in scores if s.get("value") is None),
        "mean": bootstrap_interval(numbers, seed=seed).to_dict() if numbers else None,
        "pass_rate": (
            bootstrap_interval([1.0 if v else 0.0 for v in verdicts], seed=seed).to_dict() if verdicts else None
        ),
        "categories": dict(categories) or None,
        "higher_is_better": next((s.get("higher_is_better", True) for s in scores), True),
    }


def summarise(rows: Sequence[ResultRow], variants: Sequence[str], metrics: Sequence[str]) -> dict[str, Any]:
    by_variant: dict[str, list[ResultRow]] = defaultdict(list)
    for row in rows:
        by_variant[row.variant].append(row)
    out: dict[str, Any] = {}
    for variant in variants:
        done = by_variant.get(variant, [])
        ok = [r for r in done if r.status == "ok"]
        latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
        cost = sum((r.cost_usd or Decimal(0) for r in done), Decimal(0))
        out[variant] = {
            "items": len(done),
            "errors": sum(1 for r in done if r.status == "error"),
            "cost_usd": format(cost, "f"),
            "latency_ms": {
                "p50": float(np.percentile(latencies, 50)) if latencies else None,
                "p95": float(np.percentile(latencies, 95)) if latencies else None,
            },
            "metrics": {
                m: _metric_summary([r.scores[m] for r in ok if m in r.scores], seed=i) for i, m in enumerate(metrics)
            },
        }
    return out


def compare(
    rows: Sequence[ResultRow],
    baseline: str,
    candidate: str,
    metrics: Sequence[str],
    *,
    correction: str = "holm",
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Candidate against baseline on each numeric metric, paired by item; p-values adjusted across metrics."""
    scored: dict[tuple[str, str], dict[str, Any]] = {
        (r.variant, r.item_id): r.scores for r in rows if r.status == "ok" and r.variant in (baseline, candidate)
    }
    items = sorted({item for (_, item) in scored})
    found: list[dict[str, Any]] = []
    for index, metric in enumerate(metrics):
        a: list[float] = []
        b: list[float] = []
        higher = True
        for item in items:
            left = scored.get((baseline, item), {}).get(metric)
            right = scored.get((candidate, item), {}).get(metric)
            if left is None or right is None:
                continue
            x, y = _number(left), _number(right)
            if x is None or y is None:
                continue
            a.append(x)
            b.append(y)
            higher = bool(left.get("higher_is_better", True))
        if not a:
            found.append({"metric": metric, "n": 0, "note": "no item judged numerically for both variants"})
            continue
        result = paired_comparison(a, b, seed=index)
        found.append({"metric": metric, "higher_is_better": higher, **result.to_dict()})
    tested = [f for f in found if "p_value" in f]
    for entry, p in zip(tested, adjust([f["p_value"] for f in tested], correction), strict=True):
        entry["p_adjusted"] = p
        difference = entry["difference"]["estimate"]
        if p >= alpha or difference == 0:
            entry["verdict"] = "no significant difference"
        else:
            entry["verdict"] = "better" if (difference > 0) == entry["higher_is_better"] else "worse"
    return {"baseline": baseline, "candidate": candidate, "correction": correction, "alpha": alpha, "metrics": found}
