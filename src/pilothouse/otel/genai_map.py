"""One OTLP span onto our span model, by the GenAI semantic conventions (v1.41.1, ../shared/specs/otel-genai/).

* kind from `gen_ai.operation.name`: chat, text_completion, generate_content -> llm; embeddings -> embedding;
  execute_tool -> tool; retrieval -> retrieval; invoke_agent, create_agent, invoke_workflow -> step. A span with
  no operation but a model is an llm call, one with `http.*` request attributes is http, anything else a step.
* model (`gen_ai.response.model`, else `gen_ai.request.model`), provider (`gen_ai.provider.name`, or the older
  `gen_ai.system`), usage (`gen_ai.usage.input_tokens`/`output_tokens`, cached input from
  `gen_ai.usage.cache_read.input_tokens`), time to first chunk, and cost from our price book (`span_costs`).
* content: `gen_ai.input.messages` + `gen_ai.system_instructions` -> input, `gen_ai.output.messages` -> output
  (as attributes, or on a `gen_ai.client.inference.operation.details` event, or the older
  `gen_ai.content.prompt`/`gen_ai.content.completion` events); tool arguments and results; retrieval query and
  documents. Content leaves the attributes (it is kept once, where redaction and retention find it) and is
  dropped when content capture is off.
* everything else stays in `attributes` under its own name; span kind, scope and unmapped events and links
  under `otel.*`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from pilothouse.otel.anyvalue import attributes_dict
from pilothouse.otel.messages import from_otel
from pilothouse.otel.span_costs import SpanCosts
from pilothouse.tracing.model import SpanKind, SpanRecord

KINDS: dict[str, SpanKind] = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "retrieval": "retrieval",
    "invoke_agent": "step",
    "create_agent": "step",
    "invoke_workflow": "step",
}
CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.retrieval.query.text",
    "gen_ai.retrieval.documents",
    "gen_ai.prompt",
    "gen_ai.completion",
)
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_LEGACY_EVENTS = {"gen_ai.content.prompt": "gen_ai.prompt", "gen_ai.content.completion": "gen_ai.completion"}
_SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_ERROR = Status.STATUS_CODE_ERROR
_CONTENT = frozenset(CONTENT_KEYS)
_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)
NAME_MAX, MODEL_MAX, PROVIDER_MAX = 200, 200, 50  # the spans table's column sizes


class BadSpan(ValueError):
    """A span that cannot be stored (ids missing or of the wrong size); the message says which and why."""


def _json_value(value: Any) -> Any:
    """Structured content sent as JSON text (the usual way) is parsed; other text is kept as it is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit] or None


def span_ids(span: Span) -> tuple[str, str, str | None]:
    """(trace id, span id, parent id) as lower-case hex: OTel ids are our ids (store/ids.py uses their sizes)."""
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id  # each read makes a new bytes
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        raise BadSpan(f"span {span.name[:80]!r}: traceId must be 16 bytes (32 hex digits), not all zero")
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        raise BadSpan(f"span {span.name[:80]!r}: spanId must be 8 bytes (16 hex digits), not all zero")
    if parent and len(parent) != 8:
        raise BadSpan(f"span {span.name[:80]!r}: parentSpanId must be 8 bytes (16 hex digits) or empty")
    return trace_id.hex(), span_id.hex(), parent.hex() if parent and parent != _ZERO_SPAN_ID else None


def _kind(attrs: dict[str, Any]) -> SpanKind:
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in KINDS:
        return KINDS[operation]
    if "gen_ai.request.model" in attrs or "gen_ai.response.model" in attrs:
        return "llm"
    if "http.request.method" in attrs or "http.method" in attrs:
        return "http"
    return "step"


def _messages(value: Any) -> list[Any]:
    parsed = _json_value(value)
    if isinstance(parsed, list):
        return [from_otel(m) for m in parsed]
    return [] if parsed is None else [parsed]


def _system_messages(value: Any) -> list[dict[str, Any]]:
    parsed = _json_value(value)
    if parsed is None:
        return []
    if isinstance(parsed, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in parsed):
        return [{"role": "system", "content": "".join(str(p.get("content", "")) for p in parsed)}]
    return [{"role": "system", "content": parsed if isinstance(parsed, str) else json.dumps(parsed)}]


def _llm_output(value: Any) -> Any:
    parsed = _json_value(value)
    if not isinstance(parsed, list):
        return None if parsed is None else {"message": parsed}
    choices = [
        {"message": from_otel(m), "finish_reason": m.get("finish_reason") if isinstance(m, dict) else None}
        for m in parsed
    ]
    for choice in choices:
        if isinstance(choice["message"], dict):
            choice["message"].pop("finish_reason", None)
    return choices[0] if len(choices) == 1 else {"choices": choices}


def _content(kind: SpanKind, content: dict[str, Any]) -> tuple[Any, Any]:
    """(input, output) of a span from its content attributes."""
    if kind == "tool":
        args, result = content.get("gen_ai.tool.call.arguments"), content.get("gen_ai.tool.call.result")
        return (
            None if args is None else {"arguments": _json_value(args)},
            None if result is None else {"result": _json_value(result)},
        )
    if kind == "retrieval":
        query, docs = content.get("gen_ai.retrieval.query.text"), content.get("gen_ai.retrieval.documents")
        return (
            None if query is None else {"query": query},
            None if docs is None else {"documents": _json_value(docs)},
        )
    messages = _system_messages(content.get("gen_ai.system_instructions"))
    messages += _messages(content.get("gen_ai.input.messages", content.get("gen_ai.prompt")))
    output = _llm_output(content.get("gen_ai.output.messages", content.get("gen_ai.completion")))
    return ({"messages": messages} if messages else None), output


@dataclass(slots=True)
class SpanMapper:
    """Maps OTLP spans of one request; `costs` prices llm and embedding calls."""

    costs: SpanCosts
    capture_content: bool = True

    def map(self, span: Span, project_id: str, scope_name: str | None = None) -> SpanRecord:
        trace_id, span_id, parent_id = span_ids(span)
        attrs = attributes_dict(span.attributes)
        content = {} if _CONTENT.isdisjoint(attrs) else {k: attrs.pop(k) for k in CONTENT_KEYS if k in attrs}
        events = self._events(span, attrs, content) if len(span.events) else None
        kind = _kind(attrs)
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        record = SpanRecord(
            trace_id=trace_id,
            project_id=project_id,
            kind=kind,
            name=span.name[:NAME_MAX] or "(unnamed)",
            id=span_id,
            parent_id=parent_id,
            started_at=start / 1e9,
        )
        if end:
            record.ended_at = end / 1e9
            record.latency_ms = round(max(end - start, 0) / 1e6, 3)
        if span.HasField("status") and span.status.code == _ERROR:  # an unset status is not read (no wrapper)
            record.status = "error"
            record.error = span.status.message or _text(attrs.get("error.type"), 1000) or events
        get = attrs.get
        record.model = _text(get("gen_ai.response.model") or get("gen_ai.request.model"), MODEL_MAX)
        record.provider = _text(get("gen_ai.provider.name") or get("gen_ai.system"), PROVIDER_MAX)
        self._usage(record, attrs)
        otel_kind = span.kind
        if otel_kind != 1 and otel_kind in _SPAN_KINDS:
            attrs["otel.span.kind"] = _SPAN_KINDS[otel_kind]
        if scope_name:
            attrs["otel.scope.name"] = scope_name
        if len(span.links):
            attrs["otel.links"] = [
                {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()} for link in span.links
            ]
        record.attributes = attrs
        if self.capture_content and content:
            record.input, record.output = _content(kind, content)
        return record

    def _usage(self, record: SpanRecord, attrs: dict[str, Any]) -> None:
        get = attrs.get
        tin = _int(get("gen_ai.usage.input_tokens", get("gen_ai.usage.prompt_tokens")))
        tout = _int(get("gen_ai.usage.output_tokens", get("gen_ai.usage.completion_tokens")))
        record.input_tokens, record.output_tokens = tin, tout
        ttft = get("gen_ai.response.time_to_first_chunk")
        if ttft is not None and isinstance(ttft, int | float) and not isinstance(ttft, bool) and ttft >= 0:
            record.ttft_ms = round(ttft * 1000.0, 3)
        if record.model and (tin is not None or tout is not None) and record.kind in ("llm", "embedding"):
            cached = _int(attrs.get("gen_ai.usage.cache_read.input_tokens")) or 0
            record.cost_usd = self.costs.cost(record.provider, record.model, tin or 0, tout or 0, cached)

    @staticmethod
    def _events(span: Span, attrs: dict[str, Any], content: dict[str, Any]) -> str | None:
        """Content events folded into `content`, the others kept under `otel.events`; returns the message of
        an exception event, if any (the error of a failed span that gave no status message)."""
        kept: list[dict[str, Any]] = []
        error: str | None = None
        for event in span.events:
            values = attributes_dict(event.attributes)
            if event.name == _DETAILS_EVENT:
                for key in CONTENT_KEYS:
                    if key in values:
                        content.setdefault(key, values.pop(key))
            elif event.name in _LEGACY_EVENTS and _LEGACY_EVENTS[event.name] in values:
                content.setdefault(_LEGACY_EVENTS[event.name], values.pop(_LEGACY_EVENTS[event.name]))
                continue
            if event.name == "exception" and error is None:
                error = _text(
                    f"{values.get('exception.type', 'exception')}: {values.get('exception.message', '')}", 1000
                )
            if values or event.name != _DETAILS_EVENT:
                kept.append({"name": event.name, "time": event.time_unix_nano / 1e9, "attributes": values})
        if kept:
            attrs["otel.events"] = kept
        return error
