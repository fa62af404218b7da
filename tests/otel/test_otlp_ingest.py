"""OTLP/HTTP ingest at /v1/traces: a real OpenTelemetry SDK exporter, the JSON encoding, merging, refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.otel.conftest import Served

INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Where is my parcel?"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": "On its way."}], "finish_reason": "stop"}]


def _provider(server: Served, key: str | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-assistant"}))
    exporter = OTLPSpanExporter(
        endpoint=server.url + "/v1/traces", headers={"authorization": f"Bearer {key or server.key}"}
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # one request per span: spans meet across requests
    return provider


def test_sdk_exporter_spans_become_our_spans_with_model_usage_and_cost(server: Served) -> None:
    provider = _provider(server)
    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span(
        "invoke_agent support", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as root:
        root.set_attribute("gen_ai.conversation.id", "conv-7")
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 200,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.input.messages": json.dumps(INPUT),
                    "gen_ai.output.messages": json.dumps(OUTPUT),
                }
            )
        with tracer.start_as_current_span("execute_tool track_parcel") as tool:
            tool.set_attributes(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "track_parcel",
                    "gen_ai.tool.call.arguments": '{"id": "P-1"}',
                    "gen_ai.tool.call.result": '{"status": "shipped"}',
                }
            )
            tool.set_status(Status(StatusCode.ERROR, "carrier timeout"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()

    with server.client() as http:
        trace = http.get(f"/api/traces/{trace_id}").json()
    assert trace["name"] == "shop-assistant"
    assert trace["session_id"] == "conv-7"
    assert trace["status"] == "ok"  # only the tool failed, not the root
    spans = {s["name"]: s for s in trace["spans"]}
    assert {s["kind"] for s in spans.values()} == {"step", "llm", "tool"}
    chat_span = spans["chat gpt-4o-mini"]
    assert chat_span["model"] == "gpt-4o-mini-2024-07-18"
    assert chat_span["provider"] == "openai"
    assert (chat_span["input_tokens"], chat_span["output_tokens"]) == (1000, 200)
    assert Decimal(chat_span["cost_usd"]) > 0  # priced from our price book (the dated snapshot as its alias)
    assert chat_span["input"] == {"messages": [{"role": "user", "content": "Where is my parcel?"}]}
    assert chat_span["output"] == {"message": {"role": "assistant", "content": "On its way."}, "finish_reason": "stop"}
    assert chat_span["attributes"]["gen_ai.request.temperature"] == 0.2
    assert "gen_ai.input.messages" not in chat_span["attributes"]  # content is kept once, as input
    assert chat_span["parent_id"] == spans["invoke_agent support"]["id"]
    tool_span = spans["execute_tool track_parcel"]
    assert tool_span["status"] == "error" and tool_span["error"] == "carrier timeout"
    assert tool_span["input"] == {"arguments": {"id": "P-1"}}
    assert tool_span["output"] == {"result": {"status": "shipped"}}
    # the trace's totals count the llm span, merged over three requests
    assert (trace["input_tokens"], trace["output_tokens"]) == (1000, 200)
    assert Decimal(trace["cost_usd"]) == Decimal(chat_span["cost_usd"])
    assert trace["model"] == "gpt-4o-mini-2024-07-18"


def _json_span(trace_id: str, span_id: str, name: str, parent: str = "", **attrs: Any) -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}  # OTLP JSON: 64-bit integers as strings
        return {"stringValue": v}

    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001500000000",
        "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()],
        "status": {},
    }


def _json_body(*spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-app"}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }


TRACE = "5b8efff798038103d269b633813fc60c"


def test_json_encoding_merges_requests_into_one_trace_and_retries_change_nothing(server: Served) -> None:
    child = _json_span(
        TRACE,
        "eee19b7ec3c1b174",
        "embeddings",
        "eee19b7ec3c1b173",
        **{
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 50,
        },
    )
    root = _json_span(TRACE, "eee19b7ec3c1b173", "rag query", **{"user.id": "u-1"})
    with server.client() as http:
        first = http.post("/v1/traces", json=_json_body(child))
        assert first.status_code == 200, first.text
        assert first.headers["content-type"].startswith("application/json")
        assert first.json() == {}  # full success: no partialSuccess
        assert http.post("/v1/traces", json=_json_body(root)).status_code == 200
        again = http.post("/v1/traces", json=_json_body(root, child))  # an exporter's retry
        assert again.status_code == 200
        assert again.json()["partialSuccess"]["errorMessage"] == "2 spans were already stored and were skipped"
        assert "rejectedSpans" not in again.json()["partialSuccess"]
        trace = http.get(f"/api/traces/{TRACE}").json()
    assert len(trace["spans"]) == 2
    assert trace["name"] == "json-app" and trace["user_id"] == "u-1"
    assert trace["input_tokens"] == 50
    assert trace["started_at"] == 1700000000.0 and trace["ended_at"] == 1700000001.5
    embedding = next(s for s in trace["spans"] if s["kind"] == "embedding")
    assert embedding["latency_ms"] == 1500.0
    assert embedding["attributes"]["otel.span.kind"] == "client"


def test_a_trace_of_another_project_is_refused_as_partial_success(server: Served) -> None:
    with server.client() as http:
        assert http.post("/api/projects", json={"name": "other"}).status_code == 201
        other = http.post("/api/keys", json={"name": "o", "role": "service", "project": "other"}).json()
        assert (
            http.post("/v1/traces", json=_json_body(_json_span(TRACE, "0000000000000001", "mine"))).status_code == 200
        )
    with server.client(other["secret"]) as http:
        answer = http.post("/v1/traces", json=_json_body(_json_span(TRACE, "0000000000000002", "theirs")))
        assert answer.status_code == 200
        partial = answer.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "1" and "another project" in partial["errorMessage"]
        assert http.get(f"/api/traces/{TRACE}").status_code == 404
    with server.client() as http:
        assert [s["name"] for s in http.get(f"/api/traces/{TRACE}").json()["spans"]] == ["mine"]


def test_protobuf_answer_reports_spans_with_bad_ids(server: Served) -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    body = _json_body(_json_span("00" * 16, "0000000000000003", "zero trace id"))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = ""
    message = json_format.ParseDict(body, ExportTraceServiceRequest())
    with server.client() as http:
        answer = http.post(
            "/v1/traces", content=message.SerializeToString(), headers={"content-type": "application/x-protobuf"}
        )
    assert answer.status_code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "traceId must be 16 bytes" in response.partial_success.error_message


def _problem(answer: Any) -> str:
    """The message of a failed OTLP answer: a google.rpc.Status in the request's encoding."""
    from google.rpc import status_pb2  # type: ignore[import-untyped]

    if answer.headers["content-type"].startswith("application/x-protobuf"):
        status = status_pb2.Status()
        status.ParseFromString(answer.content)
        return str(status.message)
    body = answer.json()
    assert body["message"] == body["error"]["message"]  # a JSON Status, with our usual error object beside
    return str(body["message"])


@pytest.mark.parametrize(
    ("content", "content_type", "status", "says"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", 400, "not a protobuf ExportTraceServiceRequest"),
        (b"{not json", "application/json", 400, "malformed JSON"),
        (b"[1, 2]", "application/json", 400, "must be an object"),
        (
            json.dumps(_json_body(_json_span("zz" * 16, "0000000000000004", "x"))).encode(),
            "application/json",
            400,
            "must be hex",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',
            "application/json",
            400,
            "not an OTLP ExportTraceServiceRequest",
        ),
        (b"hello", "text/plain", 415, "unsupported Content-Type"),
    ],
)
def test_bad_bodies_are_a_clear_4xx(server: Served, content: bytes, content_type: str, status: int, says: str) -> None:
    with server.client() as http:
        answer = http.post("/v1/traces", content=content, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text
    assert says in _problem(answer)


def test_gzip_bodies_are_read_and_bombs_refused(server: Served) -> None:
    import gzip

    body = json.dumps(_json_body(_json_span(TRACE, "0000000000000005", "zipped"))).encode()
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with server.client() as http:
        assert http.post("/v1/traces", content=gzip.compress(body), headers=headers).status_code == 200
        bomb = gzip.compress(b" " * (5 * 1024 * 1024))  # inflates past max_body_bytes (4 MiB)
        refused = http.post("/v1/traces", content=bomb, headers=headers)
        assert refused.status_code == 413  # the OTLP spec's answer to a body past the limit (not retried)
        assert "inflates past the limit" in _problem(refused)


def test_viewers_cannot_write_traces(server: Served) -> None:
    with server.client() as http:
        viewer = http.post("/api/keys", json={"name": "v", "role": "viewer"}).json()
    with server.client(viewer["secret"]) as http:
        answer = http.post("/v1/traces", json=_json_body(_json_span(TRACE, "0000000000000006", "x")))
    assert answer.status_code == 403
