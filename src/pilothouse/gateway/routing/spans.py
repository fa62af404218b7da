"""How attempts appear on a trace.

A call that succeeds on its first attempt has one `llm` span, as before routing existed (with
`pilothouse.attempt` = 1 and `pilothouse.deployment`). As soon as a second attempt is made, a `step` span
named `route` is opened in the first attempt's place (same parent, same start) and every attempt, the first
included, becomes its child: one `llm` span each, in order, with its status, error, latency, tokens and
cost. The route span ends with the last attempt and carries the outcome; because failed attempts sit below
it, a request that recovered is not counted as an error trace, while the trace's token and cost totals
still sum every attempt.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from pilothouse.config import Deployment, ModelEntry
from pilothouse.errors import ApiError
from pilothouse.gateway.providers.base import ProviderError
from pilothouse.tracing.model import SpanRecord, TraceRecord

# Attributes that describe one attempt's outcome (or its own wait), so a later attempt does not inherit them.
_OUTCOME_PREFIXES = (
    "gen_ai.usage.",
    "gen_ai.response.",
    "pilothouse.cost",
    "pilothouse.upstream.",
    "error.",
    "pilothouse.backoff_s",
    "pilothouse.attempt.",
)
_ZERO = Decimal(0)


def label_attempt(
    span: SpanRecord, entry: ModelEntry, deployment: Deployment, label: str, number: int, requested: str
) -> None:
    """Point a span at the deployment this attempt calls."""
    span.name = f"chat {entry.name}"
    span.model = entry.name
    span.provider = deployment.provider
    attrs = span.attributes
    attrs["gen_ai.provider.name"] = deployment.provider
    attrs["gen_ai.request.model"] = entry.name
    attrs["pilothouse.deployment.model"] = deployment.model
    attrs["pilothouse.deployment"] = label
    attrs["pilothouse.attempt"] = number
    if entry.name != requested:
        attrs["pilothouse.fallback_from"] = requested
    else:
        attrs.pop("pilothouse.fallback_from", None)


def open_route(trace: TraceRecord, first: SpanRecord, requested: str) -> SpanRecord:
    """The `route` step span, put in the first attempt's place with that attempt below it."""
    route = trace.span("step", "route", parent_id=first.parent_id)
    route.started_at = first.started_at
    route.model = requested
    route.attributes["gen_ai.request.model"] = requested
    first.parent_id = route.id
    return route


def next_attempt(trace: TraceRecord, template: SpanRecord, route: SpanRecord) -> SpanRecord:
    """A fresh `llm` span for another attempt, with the request's attributes and input of the first."""
    span = trace.span("llm", template.name, parent_id=route.id)
    span.attributes = {k: v for k, v in template.attributes.items() if not k.startswith(_OUTCOME_PREFIXES)}
    span.input = template.input
    return span


def record_failure(span: SpanRecord, exc: ProviderError, error: ApiError) -> None:
    """A failed attempt's outcome: no usage came back, so it is metered at zero tokens and zero cost."""
    attrs: dict[str, Any] = span.attributes
    attrs["error.type"] = error.code or error.type
    attrs["pilothouse.upstream.error_kind"] = exc.kind
    if exc.status:
        attrs["pilothouse.upstream.status"] = exc.status
    if exc.retry_after is not None:
        attrs["pilothouse.upstream.retry_after_s"] = exc.retry_after
    span.input_tokens = 0
    span.output_tokens = 0
    span.cost_usd = _ZERO
    span.error = error.message


def end_span(span: SpanRecord, at: float, *, ok: bool) -> None:
    """End a span at a given wall-clock time (an attempt ends when its call does, not when we move on)."""
    span.ended_at = at
    span.latency_ms = round((at - span.started_at) * 1000.0, 3)
    span.status = "ok" if ok else "error"
    if ok:
        span.error = None


def end_failed(span: SpanRecord, error: ApiError) -> None:
    """End an attempt span now with the caller's error (the deadline cut it; the route span carries it too)."""
    span.attributes["error.type"] = error.code or error.type
    span.error = error.message
    end_span(span, time.time(), ok=False)
