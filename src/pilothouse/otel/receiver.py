"""The OTLP/HTTP trace receiver behind `POST /v1/traces`: decode, map, redact, store, answer.

`OtlpReceiver.receive` is synchronous (decoding and storing a 4 MB batch takes tens of milliseconds), so the
server runs it off the event loop. Spans it cannot take are reported the OTLP way, as a partial success
(`rejected_spans` and a message); spans it already has (a retried export) are a warning, not a rejection.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from pilothouse.otel.genai_map import SpanMapper
from pilothouse.otel.ingest import Batch, decode, inflate, to_traces
from pilothouse.otel.ingest_store import Stored, raise_if_unavailable, store_batch
from pilothouse.otel.span_costs import SpanCosts
from pilothouse.store.engine import Store
from pilothouse.tracing.capture import ContentCapture
from pilothouse.tracing.model import TraceRecord

Redactor = Callable[[TraceRecord], object]
"""Redacts a trace's content in place before it is stored (the project's storage policies)."""


def response_for(batch: Batch, stored: Stored) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    rejected = batch.rejected + stored.refused
    problems = list(batch.problems)
    if stored.refused:
        problems.append(
            f"{stored.refused} spans belong to trace ids this project cannot write (another project's trace, "
            "or content no store would take)"
        )
    if stored.duplicates:
        problems.append(f"{stored.duplicates} spans were already stored and were skipped")
    if rejected or problems:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = "; ".join(problems)
    return response


class OtlpReceiver:
    """Turns OTLP trace requests into stored traces of the caller's project."""

    def __init__(self, store: Store, costs: SpanCosts, *, capture_content: bool, max_bytes: int) -> None:
        self._store = store
        self._capture = ContentCapture(store)
        self._mapper = SpanMapper(costs, capture_content)
        self._max_bytes = max_bytes

    def receive(
        self,
        body: bytes,
        *,
        kind: str,
        encoding: str | None,
        project_id: str,
        api_key_id: str | None,
        redact: Redactor | None = None,
    ) -> ExportTraceServiceResponse:
        """Store the spans in `body`, committed when this returns; raises `OtlpError` for a body that is not an
        OTLP trace request, `StoreUnavailable` when the database cannot be reached (nothing acknowledged)."""
        request = decode(inflate(body, encoding, self._max_bytes), kind)
        batch = to_traces(request, project_id=project_id, api_key_id=api_key_id, mapper=self._mapper)
        if redact is not None:
            for trace in batch.traces:
                redact(trace)
        try:
            self._capture.apply(batch.traces)  # the project's content capture: off, redacted or full
        except Exception as exc:  # it reads the projects' modes: the database may be down
            raise_if_unavailable(self._store, exc)
            raise
        return response_for(batch, store_batch(self._store, batch))
