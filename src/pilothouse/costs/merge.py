"""Combining forecasts of the parts of a large request file (the SDK sends it in parts) into one.

Every quantity of a forecast is a sum over requests, so the parts add up exactly; per-request figures are
recomputed from the totals. Output-token statistics and prices are the same in every part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pilothouse.money import per_item, usd_string

_COSTS = ("low", "high", "worst_case")


def _sum_costs(parts: Sequence[Mapping[str, Any]], requests: int) -> dict[str, Any] | None:
    costs = [p["cost_usd"] for p in parts]
    if any(c is None for c in costs):
        return None
    total: dict[str, Decimal | None] = {}
    for name in _COSTS:
        values = [c[name] for c in costs]
        total[name] = None if any(v is None for v in values) else sum((Decimal(v) for v in values), Decimal(0))
    low, high = total["low"], total["high"]
    assert low is not None and high is not None
    worst = total["worst_case"]
    return {
        "low": usd_string(low),
        "high": usd_string(high),
        "per_request_low": usd_string(per_item(low, requests)),
        "per_request_high": usd_string(per_item(high, requests)),
        "worst_case": None if worst is None else usd_string(worst),
    }


def _merge_model(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    first = parts[0]
    requests = sum(int(p["requests"]) for p in parts)
    input_total = sum(int(p["input_tokens"]["total"]) for p in parts)
    output = dict(first["output_tokens"])
    for name in ("low_total", "high_total", "capped_requests"):
        output[name] = sum(int(p["output_tokens"][name]) for p in parts)
    worst = [p["output_tokens"]["worst_total"] for p in parts]
    output["worst_total"] = None if any(w is None for w in worst) else sum(int(w) for w in worst)
    notes: list[str] = []
    for part in parts:
        notes.extend(n for n in part["notes"] if n not in notes)
    return {
        **first,
        "requests": requests,
        "input_tokens": {
            **first["input_tokens"],
            "total": input_total,
            "per_request": round(input_total / requests, 3) if requests else None,
        },
        "output_tokens": output,
        "cost_usd": _sum_costs(parts, requests),
        "notes": notes,
    }


def merge_estimates(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One forecast from the forecasts of disjoint parts of the requests (models in order of appearance)."""
    if not parts:
        raise ValueError("nothing to merge")
    per_model: dict[str, list[Mapping[str, Any]]] = {}
    for part in parts:
        for estimate in part["estimates"]:
            per_model.setdefault(estimate["model"], []).append(estimate)
    return {
        **parts[0],
        "requests": sum(int(p["requests"]) for p in parts),
        "estimates": [_merge_model(found) for found in per_model.values()],
    }
