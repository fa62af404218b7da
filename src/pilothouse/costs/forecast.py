"""Cost forecasts for one model: what a set of requests would cost on it, as a range.

Input tokens are counted per request (exactly where the model has a tokenizer here, see `costs/models.py`).
Output tokens come from history: the low end of the range assumes every answer is as long as the median
(p50) of past answers of that prompt and model (or of the model, for plain requests), the high end the p95,
both rounded up to whole tokens; without history both use the stated default. A request's `max_tokens`
(or the model's maximum output) caps its output, and when every request has such a cap the worst case
(every answer at its cap) is given too. What is priced is the capped number: `output_tokens.priced_low` /
`priced_high` (per request, averaged over the requests) say so next to the assumed p50/p95, and a note
says when a cap lowered the assumption. Costs are exact `Decimal` arithmetic at the model's prices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pilothouse.costs.models import ModelCosting
from pilothouse.costs.plan import PlannedRequest
from pilothouse.costs.samples import Samples
from pilothouse.errors import InvalidRequest
from pilothouse.gateway.pricing import Price, cost
from pilothouse.gateway.providers.base import ProviderError, Usage
from pilothouse.money import per_item, usd_string

DEFAULT_OUTPUT_TOKENS = 256
FEW_SAMPLES = 20


@dataclass(frozen=True, slots=True)
class OutputModel:
    """Output tokens per request: p50 and p95 of history, or the stated default for both."""

    source: Literal["history", "default"]
    history: str
    """Whose history was looked at, e.g. `calls of prompt support on model gpt-4o-mini`."""
    samples: int
    p50: int
    p95: int


def output_model(history: Sequence[int], *, default: int, described: str) -> OutputModel:
    if not history:
        return OutputModel("default", described, 0, default, default)
    p50, p95 = Samples(float(v) for v in history).percentiles(50, 95)
    assert p50 is not None and p95 is not None
    return OutputModel("history", described, len(history), math.ceil(p50), math.ceil(p95))


def _price_dict(price: Price | None) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else format(value, "f")

    if price is None:
        return {"source": "unknown", "input_per_mtok": None, "output_per_mtok": None, "cached_input_per_mtok": None}
    return {
        "source": price.source,
        "input_per_mtok": text(price.input),
        "output_per_mtok": text(price.output),
        "cached_input_per_mtok": text(price.cached_input),
    }


def _cap(request_cap: int | None, model_cap: int | None) -> int | None:
    caps = [c for c in (request_cap, model_cap) if c is not None]
    return min(caps) if caps else None


@dataclass(slots=True)
class _Tokens:
    requests: int = 0
    input: int = 0
    low: int = 0
    high: int = 0
    worst: int | None = 0
    capped: int = 0


def _count(costing: ModelCosting, requests: Sequence[tuple[str, PlannedRequest]], output: OutputModel) -> _Tokens:
    model_cap = costing.price.max_output_tokens if costing.price is not None else None
    tokens = _Tokens()
    for where, request in requests:
        try:
            n_in = costing.input_tokens(request.messages, request.tools)
        except ProviderError as exc:
            raise InvalidRequest(f"{where}: cannot count its tokens for {costing.model}: {exc.message}") from None
        n = request.count
        cap = _cap(request.max_tokens, model_cap)
        tokens.requests += n
        tokens.input += n * n_in
        tokens.low += n * (output.p50 if cap is None else min(output.p50, cap))
        tokens.high += n * (output.p95 if cap is None else min(output.p95, cap))
        if cap is not None and cap < output.p95:
            tokens.capped += n
        tokens.worst = None if tokens.worst is None or cap is None else tokens.worst + n * cap
    return tokens


def _notes(costing: ModelCosting, output: OutputModel, tokens: _Tokens) -> list[str]:
    notes = []
    if costing.price is None and not costing.served:
        notes.append(
            "neither served by this server nor in the price catalog: the price is unknown, so no cost can be given"
        )
    elif costing.price is None:
        notes.append(
            f"the price of its deployment {costing.deployment} is unknown, so no cost can be given: set "
            "input_price_per_mtok and output_price_per_mtok on the deployment"
        )
    elif not costing.served:
        notes.append("not served by this server: priced from the price catalog by name")
    if costing.counter is None:
        notes.append("input tokens are estimated (no tokenizer for this model here)")
    if output.source == "default":
        notes.append(f"no history ({output.history}): assumed {output.p50} output tokens per request")
    elif output.samples < FEW_SAMPLES:
        notes.append(f"only {output.samples} past calls ({output.history}): the range is rough")
    if tokens.capped:
        low, high = _per_request(tokens.low, tokens.requests), _per_request(tokens.high, tokens.requests)
        shown = f"{low:g}" if low == high else f"{low:g} to {high:g}"
        notes.append(
            f"max_tokens (or the model's output limit) caps {tokens.capped} of {tokens.requests} requests below the "
            f"assumed {output.p95} output tokens: priced at {shown} output tokens per request"
        )
    return notes


def _per_request(total: int, n: int) -> float:
    return round(total / n, 3) if n else 0.0


def forecast(
    costing: ModelCosting, requests: Sequence[tuple[str, PlannedRequest]], output: OutputModel
) -> dict[str, Any]:
    """The forecast for `requests` (each named for error messages, e.g. `requests[3]`) on one model."""
    tokens = _count(costing, requests, output)
    n = tokens.requests
    cost_usd: dict[str, Any] | None = None
    if costing.price is not None and n:
        low = cost(costing.price, Usage(tokens.input, tokens.low))
        high = cost(costing.price, Usage(tokens.input, tokens.high))
        worst = None if tokens.worst is None else cost(costing.price, Usage(tokens.input, tokens.worst))
        cost_usd = {
            "low": usd_string(low),
            "high": usd_string(high),
            "per_request_low": usd_string(per_item(low, n)),
            "per_request_high": usd_string(per_item(high, n)),
            "worst_case": None if worst is None else usd_string(worst),
        }
    return {
        "model": costing.model,
        "served": costing.served,
        "deployment": costing.deployment,
        "requests": n,
        "input_tokens": {
            "total": tokens.input,
            "per_request": round(tokens.input / n, 3) if n else None,
            "counting": costing.counting,
            "method": costing.counting_method,
        },
        "output_tokens": {
            "source": output.source,
            "history": output.history,
            "samples": output.samples,
            "p50": output.p50,
            "p95": output.p95,
            "priced_low": _per_request(tokens.low, n),
            "priced_high": _per_request(tokens.high, n),
            "low_total": tokens.low,
            "high_total": tokens.high,
            "worst_total": tokens.worst,
            "capped_requests": tokens.capped,
        },
        "price": _price_dict(costing.price),
        "cost_usd": cost_usd,
        "notes": _notes(costing, output, tokens),
    }
