"""An upstream that quotes its request's credentials in its errors: neither the caller nor the stored trace
sees them, whole or streamed, OpenAI or Anthropic format, failing before or after the first chunk."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, running
from tests.support.echo_upstream import EchoUpstream, Mode

OPENAI_KEY = "sk-upstream-" + secrets.token_hex(12)
# A key of no provider's shape: caught by its configured value and where the upstream quotes it.
ANTHROPIC_KEY = "shapeless" + secrets.token_hex(12)
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    server = EchoUpstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(upstream: EchoUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PH_TEST_ECHO_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("PH_TEST_ECHO_ANTHROPIC_KEY", ANTHROPIC_KEY)
    models = [
        ModelEntry(
            name="echo-openai",
            deployments=[
                Deployment(
                    provider="openai",
                    model="gpt-echo",
                    base_url=upstream.url + "/v1",
                    api_key_env="PH_TEST_ECHO_OPENAI_KEY",
                )
            ],
        ),
        ModelEntry(
            name="echo-claude",
            deployments=[
                Deployment(
                    provider="anthropic",
                    model="claude-echo",
                    base_url=upstream.url,
                    api_key_env="PH_TEST_ECHO_ANTHROPIC_KEY",
                )
            ],
        ),
    ]
    with running(app_settings(tmp_path, models), monkeypatch) as (http, _app):
        yield http


def _assert_clean(text: str, key: str) -> None:
    assert key not in text, f"the upstream key leaked: {text}"
    assert "[REDACTED]" in text, f"expected the upstream's (redacted) words: {text}"


def _stored_trace(client: TestClient, trace_id: str) -> dict[str, Any]:
    resp = client.get(f"/api/traces/{trace_id}")
    assert resp.status_code == 200, resp.text
    trace: dict[str, Any] = resp.json()
    return trace


def _span_errors(trace: dict[str, Any]) -> str:
    errors = [span.get("error") or "" for span in trace["spans"]]
    assert any(errors), f"no span recorded the failure: {trace}"
    return orjson.dumps(trace).decode()


@pytest.mark.parametrize("model", ["echo-openai", "echo-claude"])
@pytest.mark.parametrize("mode", ["400", "500"])
@pytest.mark.parametrize("stream", [False, True])
def test_error_status_carries_no_upstream_key(
    client: TestClient, upstream: EchoUpstream, model: str, mode: Mode, stream: bool
) -> None:
    upstream.mode = mode
    calls = upstream.calls
    resp = client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES, "stream": stream})
    assert upstream.calls > calls, "the upstream was not called"
    assert resp.status_code == (400 if mode == "400" else 502), resp.text
    key = OPENAI_KEY if model == "echo-openai" else ANTHROPIC_KEY
    _assert_clean(resp.text, key)
    assert resp.json()["error"]["message"].startswith("upstream ")
    trace = _stored_trace(client, resp.headers["x-pilothouse-trace-id"])
    _assert_clean(_span_errors(trace), key)


@pytest.mark.parametrize("model", ["echo-openai", "echo-claude"])
def test_mid_stream_error_event_carries_no_upstream_key(client: TestClient, upstream: EchoUpstream, model: str) -> None:
    upstream.mode = "stream"
    resp = client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES, "stream": True})
    assert resp.status_code == 200, resp.text
    events = [line[len("data: ") :] for line in resp.text.splitlines() if line.startswith("data: ")]
    errors = [orjson.loads(e) for e in events if e != "[DONE]" and "error" in orjson.loads(e)]
    assert len(errors) == 1, resp.text
    key = OPENAI_KEY if model == "echo-openai" else ANTHROPIC_KEY
    _assert_clean(resp.text, key)
    trace = _stored_trace(client, resp.headers["x-pilothouse-trace-id"])
    _assert_clean(_span_errors(trace), key)
