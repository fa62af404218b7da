"""The JSON batch the SDK sends to `POST /api/ingest/spans`, built in the exporter's thread.

Content is whatever the application passed (arguments, return values, attributes): `jsonable` turns it into
JSON-safe values, capping depth, sizes and lengths, and writes anything else as its `repr` (never raising:
a span with odd content is still sent).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.sdk.tracing.spans import Span

MAX_DEPTH = 8
MAX_ITEMS = 200
MAX_TEXT = 32_000


def jsonable(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-safe data, capped (see the module docstring)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if depth >= MAX_DEPTH:
        return _text(value)
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        return {str(k)[:200]: jsonable(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    dump = getattr(value, "model_dump", None)  # pydantic models (the openai client's responses among them)
    if callable(dump):
        try:
            return jsonable(dump(), depth + 1)
        except Exception:
            return _text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return jsonable(dataclasses.asdict(value), depth + 1)
        except Exception:
            return _text(value)
    return _text(value)


def _text(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def span_json(span: Span, *, capture: bool) -> dict[str, Any]:
    return {
        "trace_id": span.trace.id,
        "id": span.id,
        "parent_id": span.parent_id,
        "kind": span.kind,
        "name": span.name[:200],
        "status": span.status,
        "error": span.error,
        "started_at": span.started_at,
        "ended_at": span.ended_at,
        "ttft_ms": span.ttft_ms,
        "model": span.model,
        "provider": span.provider,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "cost_usd": span.cost_usd,
        "attributes": jsonable(span.attributes) if span.attributes else None,
        "input": jsonable(span.input) if capture else None,
        "output": jsonable(span.output) if capture else None,
    }


def batch_json(spans: list[Span], *, capture: bool) -> dict[str, Any]:
    """The request body for a batch: its spans and, once per trace, the trace's name and fields."""
    traces = {s.trace.id: s.trace for s in spans}
    return {
        "spans": [span_json(s, capture=capture) for s in spans],
        "traces": [t.info() for t in traces.values()],
    }
