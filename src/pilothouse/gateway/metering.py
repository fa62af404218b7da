"""Metering a finished model call: usage (from the upstream, else estimated and marked so) and cost on its span,
and the response attributes (finish reason, id, model, and the output where content is captured)."""

from __future__ import annotations

from typing import Any

from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.pricing import PriceBook, cost
from pilothouse.gateway.providers.base import Usage
from pilothouse.gateway.tokens import output_token_estimate
from pilothouse.tracing.model import SpanRecord


def meter(prices: PriceBook, prep: Prepared, usage: Usage | None, output_text: str, output_pieces: int = 0) -> None:
    """Record usage and cost on the call's span; when the upstream reported none, the input is the exact count
    or the bound and the output an estimate (text and streamed pieces) capped by the request's max_tokens."""
    span = prep.span
    if usage is None:
        usage = Usage(
            input_tokens=prep.unreported_input_tokens(),
            output_tokens=output_token_estimate(output_text, pieces=output_pieces, max_tokens=prep.body.max_tokens),
            estimated=True,
        )
    span.input_tokens = usage.input_tokens
    span.output_tokens = usage.output_tokens
    span.usage_estimated = usage.estimated
    attrs = span.attributes
    attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
    attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
    if usage.cached_input_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
    price = prices.price_for(prep.deployment)
    if price is None:
        attrs["pilothouse.cost.unknown"] = True
        span.cost_usd = None
    else:
        span.cost_usd = cost(price, usage)
        attrs["pilothouse.cost_usd"] = str(span.cost_usd)


def record_output(
    span: SpanRecord,
    message: dict[str, Any],
    finish: str | None,
    rid: str | None,
    rmodel: str | None,
    *,
    capture_content: bool,
) -> None:
    """The response's finish reason, id and model on the span; the message too where content is captured."""
    attrs = span.attributes
    if finish:
        attrs["gen_ai.response.finish_reasons"] = [finish]
    if rid:
        attrs["gen_ai.response.id"] = rid
    if rmodel:
        attrs["gen_ai.response.model"] = rmodel
    if capture_content:
        span.output = {"message": message, "finish_reason": finish}


def usage_from(raw: dict[str, Any] | None) -> Usage | None:
    """The usage of a stream's `usage` chunk (OpenAI shape); None when it sent none."""
    if not raw:
        return None
    cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0), int(cached))


def usage_body(span: SpanRecord) -> dict[str, int | None]:
    """The OpenAI `usage` object of what a span metered."""
    return {
        "prompt_tokens": span.input_tokens,
        "completion_tokens": span.output_tokens,
        "total_tokens": (span.input_tokens or 0) + (span.output_tokens or 0),
    }
