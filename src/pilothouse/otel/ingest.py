"""OTLP/HTTP trace requests in: decode an `ExportTraceServiceRequest` and turn it into our traces.

Both OTLP/HTTP encodings are read with `opentelemetry-proto`: binary protobuf (`application/x-protobuf`) and
the OTLP JSON encoding (`application/json`: camelCase names, 64-bit integers as strings, enums as numbers, trace
and span ids as hex; `google.protobuf.json_format` reads it once the ids are turned into the base64 it expects).
Bodies may be gzip-compressed (`Content-Encoding: gzip`), up to the same size limit once inflated.

OTel trace and span ids are our ids (both are W3C-sized hex, store/ids.py), so the spans of one OTel trace
land in one of our traces whichever request brings them (ingest_store merges them), and a gateway call made
with a `traceparent` joins the same trace. The resource's `service.name` names the trace.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from pilothouse.otel.anyvalue import attributes_dict
from pilothouse.otel.genai_map import NAME_MAX, BadSpan, SpanMapper
from pilothouse.tracing.model import SpanRecord, TraceRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_SESSION_KEYS = ("gen_ai.conversation.id", "session.id")
_USER_KEYS = ("user.id", "enduser.id")


class OtlpError(ValueError):
    """A body that is not an OTLP trace request in the encoding it claims; the message says what is wrong."""


class OtlpTooLarge(OtlpError):
    """A body that inflates past the size limit (the OTLP spec's `413 Content Too Large`)."""


def media_type(content_type: str | None) -> str:
    """The encoding of a request: protobuf or JSON; anything else is refused."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, JSON):
        return kind
    raise OtlpError(f"unsupported Content-Type {kind or '(none)'!r}: send OTLP traces as {PROTOBUF} or {JSON}")


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """`body` decompressed per Content-Encoding (gzip or none), refused past `max_bytes` once inflated."""
    kind = (encoding or "identity").strip().lower()
    if kind == "identity":
        return body
    if kind != "gzip":
        raise OtlpError(f"unsupported Content-Encoding {kind!r}: send gzip or no compression")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise OtlpError(f"the body is not valid gzip: {exc}") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise OtlpTooLarge(f"the body inflates past the limit of {max_bytes} bytes (max_body_bytes)")
    if not inflater.eof:
        raise OtlpError("the gzip body is truncated")
    return data


def _hex_ids_to_base64(node: Any, where: str) -> None:
    """OTLP JSON writes ids as hex; protobuf's JSON reader wants base64 for bytes fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise OtlpError(f"{where}.{key} must be hex (OTLP JSON), got {value[:40]!r}") from None
            elif isinstance(value, dict | list):
                _hex_ids_to_base64(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _hex_ids_to_base64(item, f"{where}[{index}]")


def decode(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """The request in `body`, encoded as `kind` (`media_type`)."""
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpError(f"the body is not a protobuf ExportTraceServiceRequest: {exc}") from exc
        return request
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise OtlpError(f"malformed JSON in the body: {exc}") from exc
    if not isinstance(data, dict):
        raise OtlpError("the JSON body must be an object: an ExportTraceServiceRequest with resourceSpans")
    _hex_ids_to_base64(data.get("resourceSpans", data.get("resource_spans")), "resourceSpans")
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpError(f"the JSON is not an OTLP ExportTraceServiceRequest: {exc}") from exc
    return request


def encode_response(response: ExportTraceServiceResponse, kind: str) -> bytes:
    """The answer in the request's encoding (an empty partial success is left out, as the spec asks)."""
    if kind == PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()


@dataclass(slots=True)
class Batch:
    """The traces one request brought, and the spans that could not be taken (with why)."""

    traces: list[TraceRecord] = field(default_factory=list)
    spans: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def reject(self, count: int, why: str) -> None:
        self.rejected += count
        if len(self.problems) < 5:
            self.problems.append(why)


def _first(spans: list[SpanRecord], keys: tuple[str, ...]) -> str | None:
    for span in spans:
        for key in keys:
            value = span.attributes.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:200]
    return None


def _finish(trace: TraceRecord) -> None:
    """Trace fields from its spans: times, model, session and user, status."""
    spans = trace.spans
    trace.started_at = min(s.started_at for s in spans)
    ended = [s.ended_at for s in spans if s.ended_at is not None]
    trace.ended_at = max(ended) if ended else None
    trace.model = next((s.model for s in spans if s.kind == "llm" and s.model), None)
    trace.session_id = _first(spans, _SESSION_KEYS)
    trace.user_id = _first(spans, _USER_KEYS)
    if any(s.status == "error" for s in spans if s.parent_id is None):  # a failed root span fails the trace
        trace.status = "error"


def to_traces(
    request: ExportTraceServiceRequest, *, project_id: str, api_key_id: str | None, mapper: SpanMapper
) -> Batch:
    """Our traces (one per OTel trace id) from `request`; spans with bad ids are counted as rejected."""
    batch = Batch()
    by_id: dict[str, TraceRecord] = {}
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "otel")[:NAME_MAX]
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name or None
            for span in scope_spans.spans:
                batch.spans += 1
                try:
                    record = mapper.map(span, project_id, scope)
                except BadSpan as exc:
                    batch.reject(1, str(exc))
                    continue
                trace = by_id.get(record.trace_id)
                if trace is None:
                    trace = by_id[record.trace_id] = TraceRecord(
                        project_id=project_id, name=service, id=record.trace_id, api_key_id=api_key_id
                    )
                    if resource:
                        record.attributes.setdefault("otel.resource", resource)
                trace.spans.append(record)
    for trace in by_id.values():
        _finish(trace)
    batch.traces = list(by_id.values())
    return batch
