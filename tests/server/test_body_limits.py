"""Request bodies at the boundary (server/body_guard.py): nesting depth, size and a read deadline, on the gateway's
fast path and on the management API, plus the malformed gateway bodies that used to answer 500.

In process (the application with fake models on SQLite) except the last test, which holds a real server's
connection open with a raw socket."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient
from starlette.types import Message

from pilothouse.config import Deployment, ModelEntry
from pilothouse.json_depth import nesting_exceeds, raw_nesting_exceeds
from pilothouse.server.app import PilothouseApp
from tests.support.asgi_app import ADMIN_KEY, app_settings, running
from tests.support.servers import RunningServer, start_server

MODELS = [
    ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake")]),
    ModelEntry(name="fake-embed", kind="embedding", deployments=[Deployment(provider="fake", model="fake")]),
]
TRACE = "x-pilothouse-trace-id"


def nested(depth: int, leaf: Any = "deep") -> Any:
    """`depth` containers, alternating lists and objects."""
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def nested_text(depth: int) -> bytes:
    """`nested(depth)` as JSON text (orjson would refuse to write it past 254 levels)."""
    value = b'"deep"'
    for i in range(depth):
        value = b'{"k": ' + value + b"}" if i % 2 else b"[" + value + b"]"
    return value


def with_deep(body: dict[str, Any], depth: int) -> bytes:
    """`body` as JSON text, with the string "DEEP" in it replaced by `depth` levels of nesting."""
    return orjson.dumps(body).replace(b'"DEEP"', nested_text(depth))


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, PilothouseApp]]:
    with running(app_settings(tmp_path, MODELS), monkeypatch) as pair:
        yield pair


@pytest.fixture
def client(app: tuple[TestClient, PilothouseApp]) -> TestClient:
    return app[0]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], **extra}


# -- depth -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [250, 1000])
@pytest.mark.parametrize("where", ["metadata", "content part"])
@pytest.mark.parametrize("run_id", [None, "agent-run-1"])
def test_deep_gateway_bodies_are_400_and_their_trace_is_readable(
    client: TestClient, depth: int, where: str, run_id: str | None
) -> None:
    if where == "metadata":
        body = chat(metadata={"deep": "DEEP"})
    else:
        body = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "x": "DEEP"}]}])
    headers = {"x-pilothouse-run-id": run_id} if run_id else {}
    response = client.post("/v1/chat/completions", content=with_deep(body, depth), headers=headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "json_too_deep" and error["type"] == "invalid_request_error"
    assert "64 levels" in error["message"] and "max_json_depth" in error["message"]
    trace = client.get(f"/api/traces/{response.headers[TRACE]}")
    assert trace.status_code == 200, trace.text
    assert trace.json()["status"] == "error"
    assert trace.json()["spans"][0]["attributes"]["error.type"] == "json_too_deep"


def test_nesting_up_to_the_limit_is_served_and_traced(client: TestClient) -> None:
    body = chat(metadata=nested(63))  # the body object itself is level 1
    assert not nesting_exceeds(body, 64) and nesting_exceeds(chat(metadata=nested(64)), 64)
    response = client.post("/v1/chat/completions", json=body, headers={"x-pilothouse-run-id": "r"})
    assert response.status_code == 200, response.text
    trace = client.get(f"/api/traces/{response.headers[TRACE]}")
    assert trace.status_code == 200 and trace.json()["status"] == "ok"
    too_deep = client.post("/v1/chat/completions", json=chat(metadata=nested(64)))
    assert too_deep.status_code == 400 and error_of(too_deep)["code"] == "json_too_deep"
    embeddings = client.post("/v1/embeddings", json={"model": "fake-embed", "input": "x", "user": nested(100)})
    assert embeddings.status_code == 400 and error_of(embeddings)["code"] == "json_too_deep"


def test_depth_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTHOUSE_MAX_JSON_DEPTH", "8")
    from pilothouse.config import load_settings

    assert load_settings(None).max_json_depth == 8
    with running(app_settings(tmp_path, MODELS, max_json_depth=8), monkeypatch) as (client, _):
        assert client.post("/v1/chat/completions", json=chat(metadata=nested(5))).status_code == 200
        response = client.post("/v1/chat/completions", json=chat(metadata=nested(8)))
        assert response.status_code == 400 and "8 levels" in error_of(response)["message"]


def test_deep_api_bodies_are_400(client: TestClient) -> None:
    """The management API refuses them before FastAPI parses them (its recursive encoders would fail)."""
    for path in ("/api/keys", "/api/costs/estimate", "/api/prompts"):
        response = client.post(path, content=b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        assert response.status_code == 400, (path, response.text)
        assert error_of(response)["code"] == "json_too_deep"
    no_type = client.post("/api/keys", content=orjson.dumps({"name": nested(100)}), headers={"content-type": ""})
    assert no_type.status_code == 400 and error_of(no_type)["code"] == "json_too_deep"
    fine = client.post("/api/keys", json={"name": "shallow", "role": "viewer"})
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize(
    "number", [b"-9223372036854775809", b"99999999999999999999", b"NaN", b"Infinity", b"-Infinity", b"1e999"]
)
def test_api_bodies_with_numbers_no_store_can_hold_are_400(client: TestClient, number: bytes) -> None:
    """The standard library keeps such numbers exactly; orjson and the database then failed with a 500."""
    body = b'{"definition": {"": ' + number + b'}, "message": "m"}'
    response = client.post("/api/prompts/fuzzed/versions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "json_number_out_of_range"
    edge = client.post("/api/keys", content=b'{"name": "edge", "role": "viewer", "x": 9223372036854775807}')
    assert edge.status_code == 422 and "json_number_out_of_range" not in edge.text  # in range: the route decides


def test_api_body_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running(app_settings(tmp_path, MODELS, max_body_bytes=1024), monkeypatch) as (client, _):
        response = client.post("/api/keys", json={"name": "x" * 2000, "role": "viewer"})
        assert response.status_code == 413 and "max_body_bytes" in error_of(response)["message"]
        assert response.headers["connection"] == "close"
        assert client.post("/api/keys", json={"name": "small", "role": "viewer"}).status_code == 201


def test_raw_depth_scan_skips_strings() -> None:
    assert not raw_nesting_exceeds(b'{"a": "[[[[[[[[[[[[{{{{{{{{{\\"[[[["}', 3)
    assert raw_nesting_exceeds(b'{"a": [[[[1]]]]}', 4)
    assert not raw_nesting_exceeds(b'{"a": [[[1]]]}', 4)
    assert raw_nesting_exceeds(b"[" * 100, 64)  # unterminated: still measured


# -- malformed gateway bodies that used to answer 500 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", chat(messages=[{"role": "assistant", "tool_calls": "f"}]), "messages[0].tool_calls"),
        ("/v1/chat/completions", chat(messages=[{"role": "user", "content": "x", "tool_calls": [1]}]), None),
        ("/v1/chat/completions", chat(stream=True, stream_options={"include_usage": "maybe"}), None),
        ("/v1/embeddings", {"model": "fake-embed", "input": ""}, "input"),
        ("/v1/embeddings", {"model": "fake-embed", "input": ["ok", ""]}, "input"),
    ],
)
def test_malformed_gateway_fields_are_400(client: TestClient, path: str, body: Any, param: str | None) -> None:
    response = client.post(path, json=body, headers={"x-pilothouse-run-id": "r1"})
    assert response.status_code == 400, response.text
    error = error_of(response)
    if param is not None:
        assert error["param"] == param
    assert error["param"] and error["param"].split(".")[0].split("[")[0] in error["message"]


# -- read deadline -----------------------------------------------------------------------------------------------


async def call_stalled(app: PilothouseApp, method: str, path: str, first: bytes, declared: int) -> list[Message]:
    """Call the app with a body that declares `declared` bytes, sends `first`, then never sends the rest."""
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": first, "more_body": True}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stalls
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"authorization", f"Bearer {ADMIN_KEY}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(declared).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return sent


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/api/keys"])
def test_a_stalled_body_gets_408(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    settings = app_settings(tmp_path, MODELS, body_read_timeout_s=0.3)
    with running(settings, monkeypatch) as (client, app):
        assert client.portal is not None
        started = time.monotonic()
        sent = client.portal.call(call_stalled, app, "POST", path, b'{"model": "fake-chat", ', 4096)
        assert 0.3 <= time.monotonic() - started < 5
        assert sent[0]["status"] == 408
        headers = dict(sent[0]["headers"])
        assert headers[b"connection"] == b"close"
        error = orjson.loads(sent[1]["body"])["error"]
        assert error["code"] == "body_read_timeout" and "body_read_timeout_s" in error["message"]
        assert "0.3 s" in error["message"]


def test_a_stalled_body_on_a_real_server_gets_408_and_the_connection_closes(tmp_path: Path) -> None:
    """A raw socket declares 5000 bytes and sends 20: the server answers 408 after the deadline and closes."""
    config = tmp_path / "pilothouse.toml"
    config.write_text(
        'include_default_models = false\n[[models]]\nname = "fake-chat"\n'
        '[[models.deployments]]\nprovider = "fake"\nmodel = "fake-1"\n'
    )
    server = start_server(tmp_path / "data", config=config, extra_env={"PILOTHOUSE_BODY_READ_TIMEOUT_S": "1"})
    try:
        for path in ("/v1/chat/completions", "/api/keys"):
            status, raw, elapsed = stall(server, path)
            assert status == 408, raw
            assert 0.9 <= elapsed < 10
            assert b"body_read_timeout" in raw
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def stall(server: RunningServer, path: str) -> tuple[int, bytes, float]:
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {server.admin_key}\r\n"
        "content-type: application/json\r\ncontent-length: 5000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        started = time.monotonic()
        sock.sendall(head.encode() + b'{"model": "fake-chat"')
        received = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            received += chunk
        elapsed = time.monotonic() - started
    return int(received.split(b" ", 2)[1]), received, elapsed
