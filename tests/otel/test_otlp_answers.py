"""What /v1/traces answers, per the OTLP/HTTP specification: failures as a `google.rpc.Status` in the request's
encoding (authentication included), a 503 with Retry-After while the database is down (nothing acknowledged is
lost: the exporter retries, and the retry lands once it is back), and what ingested parts become."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.otel.conftest import MODELS, Served
from tests.otel.test_otlp_ingest import _json_body, _json_span
from tests.support.asgi_app import app_settings, running

PROTOBUF = {"content-type": "application/x-protobuf"}


def _status(content: bytes) -> Any:
    status = status_pb2.Status()
    status.ParseFromString(content)
    return status


def _details(status: Any) -> tuple[Any, Any]:
    bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    for any_ in status.details:
        if any_.Is(bad.DESCRIPTOR):
            any_.Unpack(bad)
        elif any_.Is(info.DESCRIPTOR):
            any_.Unpack(info)
    return bad, info


def test_a_bad_protobuf_body_is_a_protobuf_status_with_bad_request_details(server: Served) -> None:
    with server.client() as http:
        answer = http.post("/v1/traces", content=b"\xff\xff\xff", headers=PROTOBUF)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/x-protobuf"
    status = _status(answer.content)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "not a protobuf ExportTraceServiceRequest" in status.message
    bad, info = _details(status)
    assert bad.field_violations[0].field == "body"
    assert bad.field_violations[0].description == status.message
    assert (info.reason, info.domain) == ("invalid_otlp", "pilothouse")


def test_authentication_failures_are_a_status_too(server: Served) -> None:
    body = ExportTraceServiceRequest().SerializeToString()
    with server.client("ph-not-a-key") as http:
        protobuf = http.post("/v1/traces", content=body, headers=PROTOBUF)
        as_json = http.post("/v1/traces", json={"resourceSpans": []})
    assert protobuf.status_code == 401 and protobuf.headers["content-type"] == "application/x-protobuf"
    assert _status(protobuf.content).code == 16  # UNAUTHENTICATED
    assert as_json.status_code == 401 and as_json.headers["content-type"] == "application/json"
    document = as_json.json()
    assert document["code"] == 16 and document["message"] == document["error"]["message"]
    assert any(d.get("reason") for d in document["details"])


def test_an_empty_request_is_a_full_success(server: Served) -> None:
    with server.client() as http:
        answer = http.post("/v1/traces", content=ExportTraceServiceRequest().SerializeToString(), headers=PROTOBUF)
    assert answer.status_code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.content)
    assert not response.HasField("partial_success")


def test_parts_sent_in_separate_requests_are_all_searchable(server: Served) -> None:
    trace = "7a" * 16
    first = _json_span(
        trace,
        "1000000000000001",
        "chat",
        **{
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "ferret"}]}]),
        },
    )
    second = _json_span(
        trace,
        "1000000000000002",
        "tool",
        **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.arguments": '{"animal": "pangolin"}'},
    )
    with server.client() as http:
        assert http.post("/v1/traces", json=_json_body(first)).status_code == 200
        assert http.post("/v1/traces", json=_json_body(second)).status_code == 200
        for word in ("ferret", "pangolin"):
            listed = http.get("/api/traces", params={"q": word}).json()
            assert [t["id"] for t in listed["data"]] == [trace], word


@pytest.fixture
def pg_database() -> Any:
    """A PostgreSQL database of its own, which the test may drop while the server uses it."""
    name = f"pht_otlp_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop
    drop()
    admin.dispose()


def test_a_database_outage_is_a_retryable_503_not_a_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_database: Any
) -> None:
    url, drop = pg_database
    settings = app_settings(tmp_path, MODELS).model_copy(update={"database_url": url})
    body = ExportTraceServiceRequest()
    body.MergeFrom(_protobuf(_json_body(_json_span("8b" * 16, "2000000000000001", "lost?"))))
    with running(settings, monkeypatch) as (client, _app):
        drop()  # the database goes away under the running server
        answer = client.post("/v1/traces", content=body.SerializeToString(), headers=PROTOBUF)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        status = _status(answer.content)
        assert status.code == 14 and "database is unavailable" in status.message  # UNAVAILABLE


def _protobuf(body: dict[str, Any]) -> ExportTraceServiceRequest:
    from google.protobuf import json_format

    from pilothouse.otel.ingest import JSON, decode

    request = decode(json.dumps(body).encode(), JSON)
    return json_format.ParseDict(json_format.MessageToDict(request), ExportTraceServiceRequest())


@pytest.mark.parametrize("modes_cached", [False, True])
def test_the_receiver_fails_whole_when_the_database_is_down(
    pg_database: Any, monkeypatch: pytest.MonkeyPatch, modes_cached: bool
) -> None:
    """Not one span is reported as rejected (the exporter would drop them): the request fails, retryably,
    whether the outage shows when the projects' capture modes are read or when the spans are written."""
    from pilothouse.tracing import capture

    monkeypatch.setattr(capture, "MODES_TTL_S", 3600.0 if modes_cached else 0.0)
    from pilothouse.gateway.pricing import default_price_book
    from pilothouse.otel.ingest import PROTOBUF as KIND
    from pilothouse.otel.ingest_store import StoreUnavailable
    from pilothouse.otel.receiver import OtlpReceiver
    from pilothouse.otel.span_costs import SpanCosts
    from pilothouse.store.engine import open_store
    from pilothouse.store.projects import create_project

    url, drop = pg_database
    store = open_store(url)
    with store.begin() as conn:
        project = create_project(conn, "down").id
    receiver = OtlpReceiver(store, SpanCosts(default_price_book()), capture_content=True, max_bytes=1 << 20)
    body = _protobuf(_json_body(_json_span("9c" * 16, "3000000000000001", "kept?"))).SerializeToString()
    receiver.receive(body, kind=KIND, encoding=None, project_id=project, api_key_id=None)  # reads the modes
    body = _protobuf(_json_body(_json_span("9d" * 16, "3000000000000002", "lost?"))).SerializeToString()
    drop()
    with pytest.raises(StoreUnavailable):
        receiver.receive(body, kind=KIND, encoding=None, project_id=project, api_key_id=None)
    store.dispose()


def test_a_request_without_a_key_is_answered_by_the_route_as_a_status(server: Served) -> None:
    """Requests with a key take the plain-ASGI endpoint (server/api/otlp.py `OtlpEndpoint`); one without goes
    through FastAPI's route, whose failure is the same OTLP Status."""
    body = ExportTraceServiceRequest().SerializeToString()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v1/traces", content=body, headers=PROTOBUF)
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/x-protobuf"
    status = _status(answer.content)
    assert status.code == 16 and "Missing API key" in status.message  # UNAUTHENTICATED


def test_a_body_past_the_limit_is_a_413_status_in_the_requests_encoding(server: Served) -> None:
    """The endpoint reads the body within max_body_bytes (4 MiB here), as every route does, and says so the OTLP
    way; the connection is closed (the rest of the body is not read)."""
    with server.client() as http:
        answer = http.post("/v1/traces", content=b"\x00" * (5 * 1024 * 1024), headers=PROTOBUF)
    assert answer.status_code == 413 and answer.headers["content-type"] == "application/x-protobuf"
    assert "max_body_bytes" in _status(answer.content).message


def test_json_bodies_keep_the_boundarys_depth_limit(server: Served) -> None:
    deep = b'{"resourceSpans": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    with server.client() as http:
        answer = http.post("/v1/traces", content=deep, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "json_too_deep"
