"""The gateway end to end with the bundled local models: the `openai` client against `pilothouse up`,
then the stored trace of every call read back through /api/traces."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e import AdminApi, assert_clean_log, only_span
from tests.support.servers import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

CHAT = "smollm2-135m"
EMBED = "all-minilm-l6-v2"
TRACE_HEADER = "x-pilothouse-trace-id"


@pytest.fixture(scope="module", autouse=True)
def clean_log(server: RunningServer) -> Iterator[None]:
    """Nothing this module does makes the server log an error or lose a trace."""
    offset = len(server.log())
    yield
    assert_clean_log(server, offset)


PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count from 1 to 50, separated by commas."}]


def check_llm_span(trace: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The checks every successful local chat trace must pass; returns the llm span."""
    assert trace["status"] == "ok"
    assert trace["model"] == CHAT
    span = only_span(trace, "llm")
    assert span["status"] == "ok" and span["error"] is None
    assert span["model"] == CHAT
    assert span["provider"] == "local"
    assert span["input_tokens"] > 0
    assert span["output_tokens"] > 0
    assert span["usage_estimated"] is False  # the local model counts its own tokens
    assert span["cost_usd"] == "0"
    assert span["latency_ms"] > 0
    if stream:
        assert span["ttft_ms"] is not None and 0 < span["ttft_ms"] <= span["latency_ms"]
    else:
        assert span["ttft_ms"] is None
    attrs = span["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == CHAT
    assert attrs["gen_ai.provider.name"] == "local"
    assert attrs["gen_ai.request.stream"] is stream
    assert attrs["gen_ai.usage.input_tokens"] == span["input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == span["output_tokens"]
    # the content is recorded (capture_content defaults to on)
    assert span["input"] == {"messages": PROMPT}
    assert span["output"]["message"]["role"] == "assistant"
    # the trace's totals are the span's
    assert trace["input_tokens"] == span["input_tokens"]
    assert trace["output_tokens"] == span["output_tokens"]
    assert Decimal(trace["cost_usd"]) == 0
    return span


# -- chat -------------------------------------------------------------------------------------------


def test_chat_non_stream(client: OpenAI, admin: AdminApi) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=PROMPT, max_tokens=12)
    trace_id = raw.headers.get(TRACE_HEADER)
    assert trace_id, f"no {TRACE_HEADER} header in {dict(raw.headers)}"
    completion = raw.parse()
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 12
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    trace = admin.trace(trace_id)
    assert trace["id"] == trace_id and trace["name"] == "chat"
    span = check_llm_span(trace, stream=False)
    assert span["input_tokens"] == completion.usage.prompt_tokens
    assert span["output_tokens"] == completion.usage.completion_tokens
    assert span["output"]["message"]["content"] == choice.message.content
    assert span["output"]["finish_reason"] == choice.finish_reason
    assert span["attributes"]["gen_ai.request.max_tokens"] == 12
    assert span["attributes"]["gen_ai.response.finish_reasons"] == [choice.finish_reason]


def test_chat_stream(client: OpenAI, admin: AdminApi) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=CHAT,
        messages=PROMPT,
        max_tokens=12,
        stream=True,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        trace_id = response.headers[TRACE_HEADER]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip(), f"the stream carried no text: {chunks}"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert all(c.usage is None for c in chunks)  # include_usage not asked for: no usage chunk

    span = check_llm_span(admin.trace(trace_id), stream=True)
    assert span["output"]["message"]["content"] == text
    assert span["output"]["finish_reason"] == finishes[0]


def test_chat_stream_include_usage(client: OpenAI, admin: AdminApi) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=CHAT,
        messages=PROMPT,
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        trace_id = response.headers[TRACE_HEADER]
        chunks = list(response.parse())
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens > 0 and 0 < last.usage.completion_tokens <= 10
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()

    span = check_llm_span(admin.trace(trace_id), stream=True)
    assert span["input_tokens"] == last.usage.prompt_tokens
    assert span["output_tokens"] == last.usage.completion_tokens


def test_max_tokens_is_honoured(client: OpenAI, admin: AdminApi) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=PROMPT, max_tokens=3)
    completion = raw.parse()
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    span = check_llm_span(admin.trace(raw.headers[TRACE_HEADER]), stream=False)
    assert span["output_tokens"] == 3
    assert span["attributes"]["gen_ai.response.finish_reasons"] == ["length"]

    # the same through a stream
    stream = client.chat.completions.create(
        model=CHAT,
        messages=PROMPT,
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        chunks = list(stream)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


# -- embeddings -------------------------------------------------------------------------------------

INPUTS = ["The cat sat on the mat.", "A dog barked at the mailman.", "Quarterly revenue grew by 4%."]


def check_embedding_span(trace: dict[str, Any], inputs: list[str], fmt: str) -> dict[str, Any]:
    assert trace["status"] == "ok"
    assert trace["name"] == "embeddings"
    assert trace["model"] == EMBED
    span = only_span(trace, "embedding")
    assert span["status"] == "ok"
    assert span["model"] == EMBED and span["provider"] == "local"
    assert span["input_tokens"] > 0
    assert span["output_tokens"] == 0
    assert span["cost_usd"] == "0"
    assert span["latency_ms"] > 0
    attrs = span["attributes"]
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.request.model"] == EMBED
    assert attrs["gen_ai.usage.input_tokens"] == span["input_tokens"]
    assert attrs["gen_ai.request.encoding_formats"] == [fmt]
    assert attrs["gen_ai.embeddings.dimension.count"] == 384
    assert span["input"] == {"input": inputs}
    return span


def test_embeddings_default_base64_and_float(client: OpenAI, admin: AdminApi) -> None:
    # the openai client asks for base64 by default and decodes it back to floats
    raw = client.embeddings.with_raw_response.create(model=EMBED, input=INPUTS)
    as_b64 = raw.parse()
    assert [d.index for d in as_b64.data] == [0, 1, 2]
    assert all(len(d.embedding) == 384 for d in as_b64.data)
    assert as_b64.usage.prompt_tokens > 0
    wire = raw.http_response.json()
    assert isinstance(wire["data"][0]["embedding"], str)
    assert len(base64.b64decode(wire["data"][0]["embedding"])) == 384 * 4
    span = check_embedding_span(admin.trace(raw.headers[TRACE_HEADER]), INPUTS, "base64")
    assert span["input_tokens"] == as_b64.usage.prompt_tokens

    raw_float = client.embeddings.with_raw_response.create(model=EMBED, input=INPUTS, encoding_format="float")
    as_float = raw_float.parse()
    assert isinstance(raw_float.http_response.json()["data"][0]["embedding"], list)
    assert all(len(d.embedding) == 384 for d in as_float.data)
    vectors = np.array([d.embedding for d in as_float.data])
    np.testing.assert_allclose(vectors, np.array([d.embedding for d in as_b64.data]), atol=1e-6)
    # MiniLM vectors are normalised, and different sentences differ
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert float(vectors[0] @ vectors[2]) < 0.99
    check_embedding_span(admin.trace(raw_float.headers[TRACE_HEADER]), INPUTS, "float")


def test_embeddings_single_string(client: OpenAI, admin: AdminApi) -> None:
    raw = client.embeddings.with_raw_response.create(model=EMBED, input="hello world", encoding_format="float")
    result = raw.parse()
    assert len(result.data) == 1 and len(result.data[0].embedding) == 384
    check_embedding_span(admin.trace(raw.headers[TRACE_HEADER]), ["hello world"], "float")


# -- models -----------------------------------------------------------------------------------------


def test_models_list(client: OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert CHAT in models and EMBED in models
    assert models[CHAT].owned_by == "local"
    assert client.models.retrieve(CHAT).id == CHAT


# -- listing traces ---------------------------------------------------------------------------------


def _chat_trace_id(client: OpenAI, **extra: Any) -> str:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=PROMPT, max_tokens=2, **extra)
    raw.parse()
    return raw.headers[TRACE_HEADER]


def test_trace_list_filters_and_pagination(client: OpenAI, admin: AdminApi, server: RunningServer) -> None:
    since = time.time() - 0.001
    chat_ids = [_chat_trace_id(client) for _ in range(3)]
    raw = client.embeddings.with_raw_response.create(model=EMBED, input="filters")
    raw.parse()
    embed_id = raw.headers[TRACE_HEADER]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=CHAT, messages=PROMPT, max_tokens=100_000)
    error_id = refused.value.response.headers[TRACE_HEADER]
    ours = {*chat_ids, embed_id, error_id}

    # since (epoch seconds and ISO 8601): exactly the traces made here (the session server may have more)
    recent = admin.traces(since=since, limit=500)
    assert {t["id"] for t in recent["data"]} == ours
    assert recent["next_cursor"] is None
    assert all(t["started_at"] >= since for t in recent["data"])
    iso = datetime.fromtimestamp(since, UTC).isoformat()
    assert {t["id"] for t in admin.traces(since=iso, limit=500)["data"]} == ours
    assert admin.traces(since=time.time() + 60)["data"] == []
    assert {t["id"] for t in admin.traces(since=since, until=time.time() + 60, limit=500)["data"]} == ours

    # by model
    by_embed = admin.traces(model=EMBED, since=since)["data"]
    assert [t["id"] for t in by_embed] == [embed_id]
    by_chat = admin.traces(model=CHAT, since=since, limit=500)["data"]
    assert {t["id"] for t in by_chat} == {*chat_ids, error_id}
    assert all(t["model"] == CHAT for t in admin.traces(model=CHAT, limit=500)["data"])

    # by status
    errors = admin.traces(status="error", since=since)["data"]
    assert [t["id"] for t in errors] == [error_id]
    assert errors[0]["status"] == "error"
    assert all(t["status"] == "error" for t in admin.traces(status="error", limit=500)["data"])
    assert {t["id"] for t in admin.traces(status="ok", since=since)["data"]} == {*chat_ids, embed_id}

    # pagination: limit=1 pages follow next_cursor, newest first, no duplicates, nothing missed
    seen: list[str] = []
    started: list[float] = []
    cursor: str | None = None
    for _ in range(20):
        page = admin.traces(since=since, limit=1, cursor=cursor)
        assert len(page["data"]) == 1
        seen.append(page["data"][0]["id"])
        started.append(page["data"][0]["started_at"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(ours)
    assert set(seen) == ours
    assert started == sorted(started, reverse=True)
    assert seen[0] == error_id  # the newest

    # the cursor also pages the unfiltered list
    first = admin.traces(limit=2)
    second = admin.traces(limit=2, cursor=first["next_cursor"])
    assert not {t["id"] for t in first["data"]} & {t["id"] for t in second["data"]}

    # a cursor this server did not issue is a 400 that says what to do
    resp = admin.http.get("/api/traces", params={"cursor": "not-a-cursor"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "cursor"
    assert "next_cursor" in resp.json()["error"]["message"]
    # a bad time is a 400 naming the parameter
    resp = admin.http.get("/api/traces", params={"since": "yesterday"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "since"


def test_session_and_user_are_recorded(client: OpenAI, admin: AdminApi) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT,
        messages=PROMPT,
        max_tokens=2,
        user="e2e-user-7",
        extra_headers={"x-pilothouse-session-id": "e2e-session-7"},
    )
    raw.parse()
    trace_id = raw.headers[TRACE_HEADER]
    trace = admin.trace(trace_id)
    assert trace["user_id"] == "e2e-user-7" and trace["session_id"] == "e2e-session-7"
    assert [t["id"] for t in admin.traces(session="e2e-session-7")["data"]] == [trace_id]
    assert [t["id"] for t in admin.traces(user="e2e-user-7")["data"]] == [trace_id]


def test_unknown_trace_is_404(admin: AdminApi) -> None:
    resp = admin.http.get("/api/traces/0123456789abcdef0123456789abcdef")
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "not_found_error"


def test_trace_header_on_every_response(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        resp = http.post("/v1/chat/completions", json={"model": CHAT, "messages": PROMPT})
    assert resp.status_code == 401
    assert resp.headers.get(TRACE_HEADER)


def test_concurrent_calls_each_get_their_trace(client: OpenAI, admin: AdminApi) -> None:
    """Traces of concurrent requests are group-committed; every one of them is stored, none twice."""

    def call(i: int) -> tuple[str, int]:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"Say the number {i}."}]
        raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=messages, max_tokens=2)
        completion = raw.parse()
        assert completion.usage is not None
        return raw.headers[TRACE_HEADER], completion.usage.completion_tokens

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(12)))
    ids = [trace_id for trace_id, _ in results]
    assert len(set(ids)) == len(ids)
    for (trace_id, output_tokens), i in zip(results, range(12), strict=True):
        trace = admin.trace(trace_id)
        span = only_span(trace, "llm")
        assert span["output_tokens"] == output_tokens
        assert span["input"]["messages"][0]["content"] == f"Say the number {i}."


def test_client_leaving_mid_stream(client: OpenAI, admin: AdminApi) -> None:
    """A caller that closes the stream early: the trace is stored as an error, and the model is free again."""
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Write a long essay about the sea."}]
    with client.chat.completions.with_streaming_response.create(
        model=CHAT, messages=messages, max_tokens=1000, stream=True
    ) as response:
        trace_id = response.headers[TRACE_HEADER]
        for _, _chunk in zip(range(3), response.parse(), strict=False):
            pass
    after = client.chat.completions.create(model=CHAT, messages=PROMPT, max_tokens=2)
    assert after.choices[0].message.content is not None

    trace = admin.trace(trace_id, wait_s=5.0)  # stored after the response ended, as the caller left
    assert trace["status"] == "error"
    span = only_span(trace, "llm")
    assert span["status"] == "error"
    assert span["error"] == "request ended before the call completed"
    assert span["ttft_ms"] is not None
