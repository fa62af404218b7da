"""Fuzzing the two gateway endpoints with malformed bodies: no 5xx, and every refusal in the OpenAI error shape.

Deterministic (a fixed seed) and bounded (a few thousand requests, seconds), against the application in this
process with fake models (priced, with a context window, the exact cache on, and a loop-guard run id on half
the calls, so every stage that reads the body runs). The bodies: every field of a chat and an embeddings
request (and of a message, a content part, a tool, a tool call) replaced in turn by values of the wrong type,
numbers far out of range (2**63 and past 64 bits, 1e308, NaN and Infinity tokens), empty and huge strings,
NUL and lone surrogates, deep nesting; then whole bodies that are not JSON objects, invalid UTF-8, other
encodings, duplicated keys, truncated text; then random mutations of nested fields.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from pilothouse.config import CacheSettings, Deployment, ModelEntry
from tests.support.asgi_app import app_settings, running

SEED = 7_2024
MAX_BODY_BYTES = 64 * 1024
PRICED: dict[str, Any] = {
    "input_price_per_mtok": Decimal("1"),
    "output_price_per_mtok": Decimal("2"),
    "context_window": 4096,
}
MODELS = [
    ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake", **PRICED)]),
    ModelEntry(  # no context window: huge max_tokens reach admission (worst-case cost) and the provider
        name="fake-open",
        deployments=[Deployment(provider="fake", model="fake", input_price_per_mtok=Decimal("3"))],
    ),
    ModelEntry(name="fake-embed", kind="embedding", deployments=[Deployment(provider="fake", model="fake")]),
]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


@dataclass(frozen=True)
class Raw:
    """JSON text put into a body as is (tokens no encoder writes: NaN, 1e400, deep nesting, lone surrogates)."""

    text: bytes


def deep(depth: int) -> Raw:
    value = b"1"
    for i in range(depth):
        value = b'{"k":' + value + b"}" if i % 2 else b"[" + value + b"]"
    return Raw(value)


WEIRD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1.5,
    -0.0,
    1e308,
    -1e308,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    10**30,
    -(2**63) - 1,
    "",
    "x",
    "y" * 5000,
    "z" * (MAX_BODY_BYTES + 1),
    "\u0000",
    "é 漢字 🚀 \u202e",
    "prompt:nope@99999999999999999999",
    "fake-chat",
    "fake-embed",
    Raw(b'"\\ud800"'),
    Raw(b"NaN"),
    Raw(b"Infinity"),
    Raw(b"-Infinity"),
    Raw(b"1e400"),
    Raw(b"-1e400"),
    Raw(b"1e-400"),
    Raw(b"123456789012345678901234567890"),
    [],
    {},
    [None],
    [1, "a", {}],
    {"a": None},
    {"": ""},
    list(range(300)),
    ["fake-chat"],
    {"type": "text"},
    [{"type": "text", "text": 5}],
    [{"role": "user", "content": "hi"}],
    deep(30),
    deep(70),
    deep(2000),
]


def encode(value: Any) -> bytes:
    """JSON text of `value`, with `Raw` parts verbatim and integers of any size."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return b"{" + b",".join(orjson.dumps(str(k)) + b":" + encode(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    return orjson.dumps(value)


def chat_body() -> dict[str, Any]:
    return {
        "model": "fake-chat",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
        ],
        "temperature": 0,
        "max_tokens": 8,
        "stream": False,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "response_format": {"type": "text"},
        "metadata": {"team": "a"},
        "user": "u1",
    }


CHAT_FIELDS = [
    *[(k,) for k in chat_body()],
    *[(k,) for k in ("top_p", "presence_penalty", "frequency_penalty", "max_completion_tokens", "n", "seed", "stop")],
    *[(k,) for k in ("logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls", "variables", "store")],
    ("messages", 0),
    ("messages", 1, "role"),
    ("messages", 1, "content"),
    ("messages", 1, "name"),
    ("messages", 1, "content", 0),
    ("messages", 1, "content", 0, "type"),
    ("messages", 1, "content", 0, "text"),
    ("messages", 2, "content"),
    ("messages", 2, "tool_calls"),
    ("messages", 2, "tool_calls", 0),
    ("messages", 2, "tool_calls", 0, "function"),
    ("messages", 2, "tool_calls", 0, "function", "name"),
    ("messages", 2, "tool_calls", 0, "function", "arguments"),
    ("messages", 2, "function_call"),
    ("messages", 3, "tool_call_id"),
    ("stream_options", "include_usage"),
    ("tools", 0),
    ("tools", 0, "function"),
    ("tools", 0, "function", "name"),
    ("tools", 0, "function", "parameters"),
    ("response_format", "type"),
    ("response_format", "json_schema"),
]


def embeddings_body() -> dict[str, Any]:
    return {"model": "fake-embed", "input": ["one", "two"], "encoding_format": "float", "user": "u1"}


EMBEDDING_FIELDS = [
    *[(k,) for k in embeddings_body()],
    ("dimensions",),
    ("input", 0),
    ("input", 1),
]


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `body` with the value at `path` set to `value` (a missing key is added)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: replaced(body.get(head), rest, value)}
    if isinstance(body, list) and isinstance(head, int) and head < len(body):
        return [replaced(v, rest, value) if i == head else v for i, v in enumerate(body)]
    return body


WHOLE_BODIES: list[bytes] = [
    b"",
    b" \n\t",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1e400",
    b"NaN",
    b'"a string"',
    b"[]",
    b"[1, 2]",
    b"{}",
    b"{",
    b'{"model": "fake-chat", "messages": [',
    b'{"model": "fake-chat"} trailing',
    b"\xff\xfe\xfd",
    b'{"model": "fake-\xff\xfe", "messages": [{"role": "user", "content": "\xc3"}]}',
    b'\xef\xbb\xbf{"model": "fake-chat", "messages": [{"role": "user", "content": "bom"}]}',
    '{"model": "fake-chat", "messages": [{"role": "user", "content": "utf16"}]}'.encode("utf-16"),
    b'{"model": "fake-chat", "messages": [{"role": "user", "content": "caf\xe9"}]}',
    b'{"model": "fake-chat", "model": 5, "messages": [{"role": "user", "content": "dup"}]}',
    b'{"model": 5, "model": "fake-chat", "messages": [{"role": "user", "content": "dup"}]}',
    b'{"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "messages": "dup"}',
    b'{"model": "fake-embed", "input": "x", "input": ""}',
    b'{"model": "fake-chat", "messages": [{"role": "user", "content": "\\u0000"}]}',
    b"[" * 100_000,
    b'{"a":' * 10_000,
    b" " * (MAX_BODY_BYTES + 1),
]


def shown(value: Any) -> str:
    text = repr(value.text if isinstance(value, Raw) else value)
    return text if len(text) < 80 else text[:77] + "..."


def cases() -> Iterator[tuple[str, str, bytes]]:
    """(endpoint, what was changed, body)."""
    rng = random.Random(SEED)
    for path in CHAT_FIELDS:
        for value in WEIRD:
            yield CHAT, f"{path} = {shown(value)}", encode(replaced(chat_body(), path, value))
    for path in [("max_tokens",), ("max_completion_tokens",), ("seed",), ("stream",)]:
        for value in WEIRD:
            body = replaced({**chat_body(), "model": "fake-open"}, path, value)
            yield CHAT, f"fake-open {path} = {shown(value)}", encode(body)
    for path in EMBEDDING_FIELDS:
        for value in WEIRD:
            yield EMBEDDINGS, f"{path} = {shown(value)}", encode(replaced(embeddings_body(), path, value))
    for raw in WHOLE_BODIES:
        yield CHAT, f"body {shown(raw)}", raw
        yield EMBEDDINGS, f"body {shown(raw)}", raw
    for _ in range(300):  # several fields at once, streaming included
        endpoint, body, fields = (
            (CHAT, chat_body(), CHAT_FIELDS)
            if rng.random() < 0.7
            else (EMBEDDINGS, embeddings_body(), EMBEDDING_FIELDS)
        )
        if endpoint == CHAT and rng.random() < 0.5:
            body["stream"] = True
        if endpoint == CHAT and rng.random() < 0.5:
            body["model"] = "fake-open"
        changes = []
        for path in rng.sample(fields, rng.randint(1, 4)):
            value = rng.choice(WEIRD)
            body = replaced(body, path, value)
            changes.append(f"{path} = {shown(value)}")
        yield endpoint, ", ".join(changes), encode(body)


def problem(response: Any) -> str | None:
    """What is wrong with an answer, or None: a 200 of the right kind, or a 4xx in the OpenAI error shape."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if status == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            return None if response.text.rstrip().endswith("data: [DONE]") else "stream without [DONE]"
        body = response.json()
        return None if "choices" in body or "data" in body else f"200 without choices or data: {body}"
    if response.headers.get("content-type") != "application/json":
        return f"{status} with content-type {response.headers.get('content-type')}"
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"} or set(body) != {"error"}:
        return f"{status} not in the OpenAI error shape: {body}"
    if not isinstance(error["message"], str) or not error["message"] or not isinstance(error["type"], str):
        return f"{status} with an empty message or type: {body}"
    if not all(v is None or isinstance(v, str) for v in (error["param"], error["code"])):
        return f"{status} with a non-string param or code: {body}"
    return None


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    settings = app_settings(
        tmp_path, MODELS, max_body_bytes=MAX_BODY_BYTES, cache=CacheSettings(enabled=True, backend="memory")
    )
    with running(settings, monkeypatch, raise_server_exceptions=False) as (http, _):
        yield http


def test_malformed_gateway_bodies_never_answer_5xx(client: TestClient) -> None:
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for i, (endpoint, change, raw) in enumerate(cases()):
        headers = {"content-type": "application/json"}
        if i % 2:
            headers["x-pilothouse-run-id"] = f"fuzz-{i % 40}"
        response = client.post(endpoint, content=raw, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if (why := problem(response)) is not None:
            failures.append(f"{endpoint} {change}: {why}")
    assert not failures, f"{len(failures)} bad answers, first ones:\n" + "\n".join(failures[:15])
    # The fuzz reached every kind of outcome, so it exercised the paths past validation too.
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 500 and statuses.get(413, 0) > 10, statuses
