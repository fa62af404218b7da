"""Our traces out over OTLP/HTTP: a gateway call's trace reaches a local OTLP receiver with the GenAI
conventions; a collector that refuses for a while is retried; one that is down never fails a request."""

from __future__ import annotations

import json
import time

from pilothouse.config import OtelSettings
from pilothouse.otel.anyvalue import attributes_dict
from pilothouse.otel.export import OtlpExporter
from pilothouse.tracing.model import TraceRecord
from tests.otel.conftest import Receiver, ServerFactory


def _wait(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_gateway_call_is_exported_with_genai_attributes(start_server: ServerFactory, receiver: Receiver) -> None:
    otel = OtelSettings(export_endpoint=receiver.url, export_headers={"x-collector-token": "t0k"}, service_name="gw")
    server = start_server(otel=otel)
    with server.client() as http:
        answer = http.post(
            "/v1/chat/completions",
            json={"model": "fake-chat", "messages": [{"role": "user", "content": "Say hi"}]},
        )
        assert answer.status_code == 200, answer.text
        trace_id = answer.headers["x-pilothouse-trace-id"]
    _wait(lambda: any(s.trace_id.hex() == trace_id for s in receiver.spans()))
    assert receiver.headers[0]["x-collector-token"] == "t0k"
    resource = attributes_dict(receiver.requests[0].resource_spans[0].resource.attributes)
    assert resource["service.name"] == "gw" and resource["pilothouse.project.id"]
    spans = [s for s in receiver.spans() if s.trace_id.hex() == trace_id]
    llm = next(s for s in spans if attributes_dict(s.attributes).get("pilothouse.span.kind") == "llm")
    attrs = attributes_dict(llm.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "fake-chat"
    assert isinstance(attrs["gen_ai.usage.input_tokens"], int)
    messages = json.loads(attrs["gen_ai.input.messages"])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}]
    assert json.loads(attrs["gen_ai.output.messages"])[0]["role"] == "assistant"
    roots = [s for s in spans if not s.parent_span_id]
    assert roots and attributes_dict(roots[0].attributes)["pilothouse.trace.source"] == "http"


def _trace() -> TraceRecord:
    trace = TraceRecord(project_id="proj_x", name="t")
    span = trace.span("llm", "chat")
    span.model, span.input_tokens, span.output_tokens = "m", 3, 4
    span.finish()
    return trace


def test_refusals_are_retried_and_a_dead_collector_only_counts_drops(receiver: Receiver) -> None:
    receiver.answers = [503, 429]
    exporter = OtlpExporter(receiver.url, backoff_s=0.01)
    exporter.offer([_trace(), _trace()])
    assert exporter.flush(10)
    assert exporter.exported == 2 and exporter.dropped == 0
    assert len(receiver.spans()) == 2
    exporter.close()

    dead = OtlpExporter("http://127.0.0.1:9/v1/traces", retries=1, backoff_s=0.01, timeout_s=1, queue_max=3)
    started = time.monotonic()
    dead.offer([_trace() for _ in range(5)])  # never blocks: 3 queued, 2 dropped at once
    assert time.monotonic() - started < 0.1
    assert dead.flush(10)
    assert dead.dropped == 5 and dead.exported == 0
    dead.close()


def test_a_permanent_refusal_is_not_retried(receiver: Receiver) -> None:
    receiver.answers = [400]
    exporter = OtlpExporter(receiver.url, backoff_s=0.01)
    exporter.offer([_trace()])
    assert exporter.flush(10)
    assert exporter.dropped == 1 and receiver.answers == [] and receiver.requests == []
    exporter.close()
