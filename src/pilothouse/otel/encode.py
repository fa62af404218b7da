"""Our traces as an OTLP `ExportTraceServiceRequest`, with the GenAI semantic conventions.

Each span keeps its `gen_ai.*` attributes and gains those its fields imply when missing (operation name from
the kind, request and response model, provider, usage); content goes out the convention's way: messages as
`gen_ai.input.messages` / `gen_ai.output.messages` JSON (otel/messages.py), tool arguments and results, the
retrieval query. Structured attribute values are sent as JSON text (most backends index only scalars and
arrays of them). The resource is `service.name` plus the project id; the trace's own fields (name, session,
user, tags, source) go on its root spans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from pilothouse.otel.anyvalue import add_attributes
from pilothouse.otel.messages import to_otel
from pilothouse.tracing.model import SpanRecord, TraceRecord

OPERATIONS = {"llm": "chat", "embedding": "embeddings", "tool": "execute_tool", "retrieval": "retrieval"}
_CLIENT_KINDS = frozenset({"llm", "embedding"})
SCOPE = "pilothouse"


def wire_id(value: str, size: int) -> bytes:
    """Our hex id as OTLP bytes; an id that is not `size` bytes of hex is hashed to that size (stable)."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    return raw if len(raw) == size else hashlib.sha256(value.encode()).digest()[:size]


def _scalar_or_json(value: Any) -> Any:
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str | bool | int | float) for v in value):
        kinds = {type(v) for v in value}
        return list(value) if len(kinds) <= 1 else json.dumps(value, default=str)
    return json.dumps(value, default=str)


def _content(span: SpanRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    source, result = span.input, span.output
    if span.kind == "tool":
        if isinstance(source, dict) and "arguments" in source:
            out["gen_ai.tool.call.arguments"] = source["arguments"]
        if isinstance(result, dict) and "result" in result:
            out["gen_ai.tool.call.result"] = result["result"]
        return out
    if span.kind == "retrieval" and isinstance(source, dict) and isinstance(source.get("query"), str):
        out["gen_ai.retrieval.query.text"] = source["query"]
        return out
    if isinstance(source, dict) and isinstance(source.get("messages"), list):
        out["gen_ai.input.messages"] = [to_otel(m) for m in source["messages"]]
    if isinstance(result, dict) and "message" in result:
        out["gen_ai.output.messages"] = [to_otel(result["message"], finish_reason=result.get("finish_reason"))]
    elif isinstance(result, dict) and isinstance(result.get("choices"), list):
        out["gen_ai.output.messages"] = [
            to_otel(c.get("message"), finish_reason=c.get("finish_reason"))
            for c in result["choices"]
            if isinstance(c, dict)
        ]
    return out


def span_attributes(span: SpanRecord, *, with_content: bool = True) -> dict[str, Any]:
    """The OTel attributes of one span: ours, plus the GenAI ones its fields imply."""
    attrs: dict[str, Any] = dict(span.attributes)
    if span.kind in OPERATIONS:
        attrs.setdefault("gen_ai.operation.name", OPERATIONS[span.kind])
    if span.model:
        attrs.setdefault("gen_ai.request.model", span.model)
        attrs.setdefault("gen_ai.response.model", span.model)
    if span.provider:
        attrs.setdefault("gen_ai.provider.name", span.provider)
    if span.input_tokens is not None:
        attrs.setdefault("gen_ai.usage.input_tokens", span.input_tokens)
    if span.output_tokens is not None:
        attrs.setdefault("gen_ai.usage.output_tokens", span.output_tokens)
    if span.cost_usd is not None:
        attrs["pilothouse.cost_usd"] = format(span.cost_usd, "f")
    attrs["pilothouse.span.kind"] = span.kind
    if with_content:
        attrs.update(_content(span))
    return {key: _scalar_or_json(value) for key, value in attrs.items()}


def _fill_span(target: Span, span: SpanRecord, trace: TraceRecord) -> None:
    target.trace_id = wire_id(span.trace_id, 16)
    target.span_id = wire_id(span.id, 8)
    if span.parent_id:
        target.parent_span_id = wire_id(span.parent_id, 8)
    target.name = span.name
    target.kind = Span.SPAN_KIND_CLIENT if span.kind in _CLIENT_KINDS else Span.SPAN_KIND_INTERNAL
    target.start_time_unix_nano = int(span.started_at * 1e9)
    ended = span.ended_at if span.ended_at is not None else span.started_at + (span.latency_ms or 0.0) / 1000.0
    target.end_time_unix_nano = int(ended * 1e9)
    if span.status == "error":
        target.status.code = Status.STATUS_CODE_ERROR
        target.status.message = span.error or ""
    else:
        target.status.code = Status.STATUS_CODE_OK
    attrs = span_attributes(span)
    if span.parent_id is None:
        attrs.update(
            {
                "pilothouse.trace.name": trace.name,
                "gen_ai.conversation.id": trace.session_id,
                "user.id": trace.user_id,
                "pilothouse.trace.tags": list(trace.tags) if trace.tags else None,
                "pilothouse.trace.source": trace.source,
            }
        )
    add_attributes(target.attributes, attrs)


def to_request(traces: Iterable[TraceRecord], *, service_name: str) -> ExportTraceServiceRequest:
    """One request holding every span of `traces`, one resource per project."""
    request = ExportTraceServiceRequest()
    by_project: dict[str, Any] = {}
    for trace in traces:
        scope_spans = by_project.get(trace.project_id)
        if scope_spans is None:
            resource_spans = request.resource_spans.add()
            add_attributes(
                resource_spans.resource.attributes,
                {"service.name": service_name, "pilothouse.project.id": trace.project_id},
            )
            scope_spans = by_project[trace.project_id] = resource_spans.scope_spans.add()
            scope_spans.scope.name = SCOPE
        for span in trace.spans:
            _fill_span(scope_spans.spans.add(), span, trace)
    return request
