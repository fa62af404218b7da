"""Refused requests end to end: every mistake a caller can make gets the right 4xx status and an
OpenAI-style error body whose message says what to fix; nothing is a 500, and the server stays healthy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e import AdminApi, assert_clean_log, only_span
from tests.support.servers import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model]

CHAT = "smollm2-135m"
EMBED = "all-minilm-l6-v2"
TRACE_HEADER = "x-pilothouse-trace-id"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
JSON_HEADERS = {"content-type": "application/json"}


def error_of(body: object) -> dict[str, Any]:
    """The `error` object of an OpenAI-style error body, checked for its four fields."""
    assert isinstance(body, dict), body
    # the openai client hands `.body` as the `error` object itself; raw bodies wrap it
    error = body.get("error", body)
    assert isinstance(error, dict), body
    assert set(error) == {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    return error


def number_in(pattern: str, message: str) -> int:
    """The number a message gives where `pattern` (one group) says."""
    match = re.search(pattern, message)
    assert match is not None, f"{pattern!r} not in {message!r}"
    return int(match.group(1))


def api_error(exc: openai.APIStatusError) -> dict[str, Any]:
    """Checks the raw response body is `{"error": {...}}` and returns the error object."""
    raw = exc.response.json()
    assert set(raw) == {"error"}, raw
    error = error_of(raw)
    assert error_of(exc.body) == error
    return error


@pytest.fixture(scope="module", autouse=True)
def log_offset(server: RunningServer) -> Iterator[int]:
    """Where the session server's log stood before this module; afterwards its new part is clean."""
    offset = len(server.log())
    yield offset
    assert_clean_log(server, offset)


@pytest.fixture
def raw_http(server: RunningServer) -> Iterator[httpx.Client]:
    """Raw HTTP on the session server with the admin key, for bodies the openai client cannot send."""
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60.0
    ) as http:
        yield http


# -- malformed and invalid bodies -------------------------------------------------------------------


def test_malformed_json(raw_http: httpx.Client) -> None:
    for path in ("/v1/chat/completions", "/v1/embeddings"):
        resp = raw_http.post(path, content=b'{"model": "smollm2-135m", "messages": [', headers=JSON_HEADERS)
        assert resp.status_code == 400, resp.text
        error = error_of(resp.json())
        assert error["code"] == "invalid_json"
        assert error["type"] == "invalid_request_error"
        assert "malformed JSON" in error["message"]
        assert resp.headers.get(TRACE_HEADER)


def test_empty_and_non_object_body(raw_http: httpx.Client) -> None:
    resp = raw_http.post("/v1/chat/completions", content=b"", headers=JSON_HEADERS)
    assert resp.status_code == 400
    assert "empty" in error_of(resp.json())["message"]
    resp = raw_http.post("/v1/chat/completions", json=["model", CHAT])
    assert resp.status_code == 400
    assert "JSON object" in error_of(resp.json())["message"]


def test_unknown_model_lists_the_available_ones(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-17-ultra", messages=HI, max_tokens=2)
    assert caught.value.status_code == 404
    error = api_error(caught.value)
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert error["type"] == "not_found_error"
    assert "gpt-17-ultra" in error["message"] and CHAT in error["message"]

    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-9", input="x")
    error = api_error(caught.value)
    assert error["code"] == "model_not_found"
    assert EMBED in error["message"]

    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-17-ultra")
    assert api_error(caught.value)["code"] == "model_not_found"


def test_missing_messages_and_model(raw_http: httpx.Client) -> None:
    resp = raw_http.post("/v1/chat/completions", json={"model": CHAT})
    assert resp.status_code == 400, resp.text
    error = error_of(resp.json())
    assert error["param"] == "messages"
    assert "'messages' is required" in error["message"]

    resp = raw_http.post("/v1/chat/completions", json={"model": CHAT, "messages": []})
    assert resp.status_code == 400
    assert error_of(resp.json())["param"] == "messages"

    resp = raw_http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 400
    error = error_of(resp.json())
    assert error["param"] == "model" and "/v1/models" in error["message"]

    resp = raw_http.post("/v1/embeddings", json={"model": EMBED})
    assert resp.status_code == 400
    assert error_of(resp.json())["param"] == "input"


@pytest.mark.parametrize(
    ("extra", "param", "needle"),
    [
        ({"temperature": "hot"}, "temperature", "must be a number"),
        ({"temperature": 7}, "temperature", "between 0 and 2"),
        ({"max_tokens": -1}, "max_tokens", "positive integer"),
        ({"max_tokens": 0}, "max_tokens", "positive integer"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"top_p": 3}, "top_p", "between 0 and 1"),
        ({"n": 3}, "n", "separate requests"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "up to 4"),
        ({"response_format": {"type": "yaml"}}, "response_format", "json_schema"),
        ({"seed": "abc"}, "seed", "integer"),
    ],
)
def test_wrong_field_types(client: OpenAI, extra: dict[str, Any], param: str, needle: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=2, extra_body=extra)
    assert caught.value.status_code == 400
    error = api_error(caught.value)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"] and needle in error["message"], error


def test_wrong_message_role(client: OpenAI) -> None:
    messages = cast(list[ChatCompletionMessageParam], [{"role": "robot", "content": "beep"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=messages, max_tokens=2)
    error = api_error(caught.value)
    assert error["param"] == "messages[0].role"
    assert "'robot'" in error["message"] and "user" in error["message"]

    messages = cast(list[ChatCompletionMessageParam], [{"role": "user", "content": 42}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=messages, max_tokens=2)
    assert api_error(caught.value)["param"] == "messages[0].content"

    messages = cast(list[ChatCompletionMessageParam], [{"role": "tool", "content": "42"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=messages, max_tokens=2)
    assert api_error(caught.value)["param"] == "messages[0].tool_call_id"


def test_wrong_embeddings_fields(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBED, input="x", dimensions=64)
    error = api_error(caught.value)
    assert error["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBED, input=[[1, 2, 3]])
    error = api_error(caught.value)
    assert error["param"] == "input" and "text" in error["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBED, input="x", extra_body={"encoding_format": "int8"})
    assert api_error(caught.value)["param"] == "encoding_format"


def test_wrong_model_kind(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=EMBED, messages=HI, max_tokens=2)
    error = api_error(caught.value)
    assert error["code"] == "wrong_model_kind"
    assert error["param"] == "model"
    assert "/v1/embeddings" in error["message"]

    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=CHAT, input="x")
    error = api_error(caught.value)
    assert error["code"] == "wrong_model_kind"
    assert "/v1/chat/completions" in error["message"]


ODD_CHAT_BODIES: list[Any] = [
    None,
    42,
    "hello",
    {"model": 42, "messages": [{"role": "user", "content": "hi"}]},
    {"model": CHAT, "messages": {"role": "user", "content": "hi"}},
    {"model": CHAT, "messages": ["hi"]},
    {"model": CHAT, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
    {"model": CHAT, "messages": [{"role": "user"}]},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "tools": "get_weather"},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "tools": [{"function": "x"}]},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "stream_options": ["include_usage"]},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "user": 7},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": True},
    {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "temperature": None, "top_p": "1"},
]
ODD_EMBEDDING_BODIES: list[Any] = [
    [],
    {"model": EMBED, "input": None},
    {"model": EMBED, "input": []},
    {"model": EMBED, "input": ["ok", 3]},
    {"model": None, "input": "x"},
]


@pytest.mark.parametrize("body", ODD_CHAT_BODIES, ids=[f"chat-{i}" for i in range(len(ODD_CHAT_BODIES))])
def test_odd_chat_bodies_are_400(raw_http: httpx.Client, body: Any) -> None:
    resp = raw_http.post("/v1/chat/completions", json=body)
    assert resp.status_code == 400, f"{body!r} -> {resp.status_code} {resp.text}"
    error = error_of(resp.json())
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", ODD_EMBEDDING_BODIES, ids=[f"embed-{i}" for i in range(len(ODD_EMBEDDING_BODIES))])
def test_odd_embedding_bodies_are_400(raw_http: httpx.Client, body: Any) -> None:
    resp = raw_http.post("/v1/embeddings", json=body)
    assert resp.status_code == 400, f"{body!r} -> {resp.status_code} {resp.text}"
    error_of(resp.json())


# -- capabilities and limits ------------------------------------------------------------------------


def test_context_window_exceeded_by_max_tokens(client: OpenAI, admin: AdminApi) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=100_000)
    error = api_error(caught.value)
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    message = error["message"]
    assert "100000 max_tokens" in message and "8192" in message, message
    needed = number_in(r"needs (\d+) tokens", message)
    assert needed > 100_000


def test_context_window_exceeded_by_messages(client: OpenAI) -> None:
    long_text = "The quick brown fox jumps over the lazy dog. " * 1000  # ~10k tokens
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": long_text}], max_tokens=16)
    error = api_error(caught.value)
    assert error["code"] == "context_length_exceeded"
    message = error["message"]
    assert "8192" in message and "16 max_tokens" in message, message
    in_messages = number_in(r"\((\d+) in the messages", message)
    assert in_messages > 8192

    # the same refusal for a stream: a status, not an SSE error
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": long_text}], max_tokens=16, stream=True
        )
    assert api_error(caught.value)["code"] == "context_length_exceeded"


def test_tools_on_the_local_model(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=CHAT,
            messages=HI,
            max_tokens=2,
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        )
    error = api_error(caught.value)
    assert error["param"] == "tools"
    assert error["code"] == "tools_not_supported"
    assert "remove 'tools'" in error["message"]

    bad_tools = cast(Any, [{"type": "function"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=2, tools=bad_tools)
    assert api_error(caught.value)["param"] == "tools[0]"


# -- authentication and roles -----------------------------------------------------------------------


def test_no_key(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path, body in (
            ("/v1/chat/completions", {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/embeddings", {"model": EMBED, "input": "x"}),
        ):
            resp = http.post(path, json=body)
            assert resp.status_code == 401, resp.text
            error = error_of(resp.json())
            assert error["type"] == "authentication_error"
            assert error["code"] == "missing_api_key"
            assert "Authorization: Bearer" in error["message"]
        resp = http.get("/v1/models")
        assert resp.status_code == 401
        assert error_of(resp.json())["code"] == "missing_api_key"
        resp = http.post(
            "/v1/chat/completions", json={"model": CHAT, "messages": []}, headers={"Authorization": "Basic abc"}
        )
        assert resp.status_code == 401
        assert "Bearer" in error_of(resp.json())["message"]


def test_bad_key(server: RunningServer, openai_for: Callable[..., OpenAI]) -> None:
    client = openai_for(server, "ph-not-a-real-key")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=2)
    assert caught.value.status_code == 401
    error = api_error(caught.value)
    assert error["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model=EMBED, input="x")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def _create_key(admin: AdminApi, name: str, role: str) -> dict[str, Any]:
    resp = admin.http.post("/api/keys", json={"name": name, "role": role})
    assert resp.status_code == 201, resp.text
    key: dict[str, Any] = resp.json()
    assert key["secret"] and key["role"] == role
    return key


def test_revoked_key(server: RunningServer, admin: AdminApi, openai_for: Callable[..., OpenAI]) -> None:
    key = _create_key(admin, "e2e-revoked", "service")
    client = openai_for(server, key["secret"])
    ok = client.chat.completions.create(model=CHAT, messages=HI, max_tokens=1)
    assert ok.choices[0].message.role == "assistant"

    resp = admin.http.delete(f"/api/keys/{key['id']}")
    assert resp.status_code == 200, resp.text
    # revocation on this server takes effect at once (its key cache is dropped)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=1)
    error = api_error(caught.value)
    assert error["code"] == "invalid_api_key"
    assert "revoked" in error["message"]
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model=EMBED, input="x")

    # revoking twice is a conflict, an unknown key a 404
    again = admin.http.delete(f"/api/keys/{key['id']}")
    assert again.status_code == 409 and "already revoked" in error_of(again.json())["message"]
    unknown = admin.http.delete("/api/keys/key_does_not_exist")
    assert unknown.status_code == 404
    error_of(unknown.json())


def test_viewer_key_cannot_call_models(
    server: RunningServer, admin: AdminApi, openai_for: Callable[..., OpenAI]
) -> None:
    key = _create_key(admin, "e2e-viewer", "viewer")
    client = openai_for(server, key["secret"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=1)
    assert caught.value.status_code == 403
    error = api_error(caught.value)
    assert error["type"] == "permission_error"
    assert "'viewer'" in error["message"] and "service" in error["message"]
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model=EMBED, input="x")
    with pytest.raises(openai.PermissionDeniedError):
        client.models.list()
    # a viewer may still read traces, but not manage keys
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key['secret']}"}) as http:
        assert http.get("/api/traces", params={"limit": 1}).status_code == 200
        denied = http.post("/api/keys", json={"name": "nope"})
        assert denied.status_code == 403
        assert "'admin' role" in error_of(denied.json())["message"]


def test_management_api_validation(admin: AdminApi) -> None:
    resp = admin.http.post("/api/keys", json={"name": "x", "role": "superuser"})
    assert resp.status_code == 422
    error = error_of(resp.json())
    assert error["param"] == "role"
    resp = admin.http.get("/api/traces", params={"limit": 0})
    assert resp.status_code == 422
    assert error_of(resp.json())["param"] == "limit"
    resp = admin.http.get("/api/no-such-endpoint")
    assert resp.status_code == 404
    error_of(resp.json())


# -- refusals are traced ----------------------------------------------------------------------------


def test_refused_call_has_an_error_trace(client: OpenAI, admin: AdminApi) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=100_000)
    message = api_error(caught.value)["message"]
    trace = admin.trace(caught.value.response.headers[TRACE_HEADER])
    assert trace["status"] == "error"
    assert trace["model"] == CHAT
    span = only_span(trace, "step")  # refused before a model span was opened
    assert span["status"] == "error"
    assert span["error"] == message
    assert span["attributes"]["error.type"] == "context_length_exceeded"
    assert span["attributes"]["http.response.status_code"] == 400

    # a validation error (before the model is known) is traced too
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=HI, max_tokens=2, extra_body={"temperature": "hot"})
    message = api_error(caught.value)["message"]
    trace = admin.trace(caught.value.response.headers[TRACE_HEADER])
    assert trace["status"] == "error"
    span = only_span(trace, "step")
    assert span["status"] == "error" and span["error"] == message
    assert span["attributes"]["http.response.status_code"] == 400

    # and an unknown model
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-17-ultra", messages=HI, max_tokens=2)
    trace = admin.trace(not_found.value.response.headers[TRACE_HEADER])
    assert trace["status"] == "error"
    assert "gpt-17-ultra" in only_span(trace, "step")["error"]
    assert only_span(trace, "step")["attributes"]["error.type"] == "model_not_found"


# -- body size limit (a server of its own) ----------------------------------------------------------


@pytest.fixture(scope="module")
def small_body_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A gateway with max_body_bytes = 2048 and only a fake model (starts fast: no local models)."""
    root = tmp_path_factory.mktemp("small-body")
    config = root / "pilothouse.toml"
    config.write_text(
        "max_body_bytes = 2048\n"
        "include_default_models = false\n"
        "[[models]]\n"
        'name = "fake-chat"\n'
        "[[models.deployments]]\n"
        'provider = "fake"\n'
        'model = "fake-1"\n'
    )
    srv = start_server(root / "data", config=config)
    yield srv
    srv.stop()


def test_body_over_the_limit(small_body_server: RunningServer, openai_for: Callable[..., OpenAI]) -> None:
    client = openai_for(small_body_server)
    ok = client.chat.completions.create(model="fake-chat", messages=HI, max_tokens=5)
    assert ok.choices[0].message.role == "assistant"

    big: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * 4096}]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fake-chat", messages=big, max_tokens=5)
    assert caught.value.status_code == 413
    error = api_error(caught.value)
    assert "2048" in error["message"] and "max_body_bytes" in error["message"]
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model="fake-chat", input="x" * 4096)
    assert caught.value.status_code == 413

    # without a Content-Length (chunked upload) the limit holds while reading
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "fake-chat", "messages": [{"role": "user", "content": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}]}'

    headers = {"Authorization": f"Bearer {small_body_server.admin_key}", "content-type": "application/json"}
    with httpx.Client(base_url=small_body_server.url, timeout=30) as http:
        resp = http.post("/v1/chat/completions", content=chunks(), headers=headers)
        assert resp.status_code == 413, resp.text
        assert "max_body_bytes" in error_of(resp.json())["message"]
        assert http.get("/readyz").status_code == 200
    assert_clean_log(small_body_server)


def test_invalid_max_body_bytes_is_refused_at_start(tmp_path: Path) -> None:
    """PILOTHOUSE_MAX_BODY_BYTES must be a positive number: `up` refuses to start and says why."""
    with pytest.raises(RuntimeError) as caught:
        start_server(tmp_path / "data", extra_env={"PILOTHOUSE_MAX_BODY_BYTES": "lots"}, timeout=60)
    assert "max_body_bytes" in str(caught.value)


# -- and afterwards -------------------------------------------------------------------------------


def test_server_is_still_healthy(server: RunningServer, client: OpenAI) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert http.get("/healthz").status_code == 200
    after = client.chat.completions.create(model=CHAT, messages=HI, max_tokens=2)
    assert after.choices[0].message.content is not None
