"""Unit tests of the gateway pipeline's own logic, with the deterministic fake provider."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import ApiError, InvalidRequest, NotFound, RateLimited, UpstreamError, UpstreamTimeout
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.base import ProviderError
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing.upstream_errors import provider_error_to_api
from pilothouse.tracing.model import TraceRecord


def make_gateway(**options: Any) -> Gateway:
    settings = Settings(
        include_default_models=False,
        models=[
            ModelEntry(
                name="fake-chat",
                deployments=[
                    Deployment(
                        provider="fake",
                        model="fake-1",
                        context_window=64,
                        input_price_per_mtok=Decimal("2"),
                        output_price_per_mtok=Decimal("8"),
                        options=options,
                    )
                ],
            ),
            ModelEntry(name="fake-embed", kind="embedding", deployments=[Deployment(provider="fake", model="e")]),
        ],
    )
    return Gateway(settings, ProviderPool(settings), default_price_book())


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "fake-chat", "messages": [{"role": "user", "content": "hello there"}], **extra}


async def test_chat_records_usage_cost_and_content() -> None:
    gw = make_gateway()
    trace = TraceRecord(project_id="p", name="chat")
    prep = gw.prepare_chat(body(temperature=0.5, max_tokens=10), trace)
    result = await gw.chat(prep)
    assert result["choices"][0]["message"]["content"] == "echo: hello there"
    span = trace.spans[0]
    assert span.kind == "llm" and span.model == "fake-chat" and span.provider == "fake"
    assert (span.input_tokens, span.output_tokens) == (3, 3)
    assert span.cost_usd == Decimal(3) * 2 / 10**6 + Decimal(3) * 8 / 10**6
    assert span.attributes["gen_ai.request.temperature"] == 0.5
    assert span.attributes["gen_ai.request.max_tokens"] == 10
    assert span.attributes["gen_ai.usage.output_tokens"] == 3
    assert span.input == {"messages": body()["messages"]}
    assert span.output["message"]["content"] == "echo: hello there"
    assert trace.model == "fake-chat"


async def test_stream_hides_usage_chunk_unless_asked_and_measures_ttft() -> None:
    gw = make_gateway()
    trace = TraceRecord(project_id="p", name="chat")
    events = [e async for e in gw.chat_stream(gw.prepare_chat(body(stream=True), trace))]
    payloads = [orjson.loads(e[len(b"data: ") :]) for e in events]
    assert all(p["choices"] for p in payloads)
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in payloads) == "echo: hello there"
    assert trace.spans[0].ttft_ms is not None and trace.spans[0].output_tokens == 3

    trace2 = TraceRecord(project_id="p", name="chat")
    events = [
        e
        async for e in gw.chat_stream(
            gw.prepare_chat(body(stream=True, stream_options={"include_usage": True}), trace2)
        )
    ]
    last = orjson.loads(events[-1][len(b"data: ") :])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3


async def test_stream_without_provider_usage_is_estimated_and_marked() -> None:
    gw = make_gateway(omit_stream_usage=True)
    trace = TraceRecord(project_id="p", name="chat")
    _ = [e async for e in gw.chat_stream(gw.prepare_chat(body(stream=True), trace))]
    span = trace.spans[0]
    assert span.usage_estimated is True
    assert span.input_tokens == 3  # the fake provider counts input exactly; output is estimated
    assert span.output_tokens == 5  # ceil(len("echo: hello there") / 4)


async def test_provider_failure_before_first_chunk_raises_api_error() -> None:
    gw = make_gateway(fail="timeout")
    trace = TraceRecord(project_id="p", name="chat")
    with pytest.raises(UpstreamTimeout):
        await gw.chat(gw.prepare_chat(body(), trace))
    with pytest.raises(UpstreamTimeout):
        _ = [e async for e in gw.chat_stream(gw.prepare_chat(body(stream=True), trace))]


def test_context_window_is_enforced_with_numbers() -> None:
    gw = make_gateway()
    with pytest.raises(InvalidRequest) as err:
        gw.prepare_chat(body(max_tokens=100), TraceRecord(project_id="p", name="chat"))
    assert err.value.code == "context_length_exceeded"
    assert "103 tokens" in err.value.message and "context window of 64" in err.value.message


def test_unknown_model_and_wrong_kind() -> None:
    gw = make_gateway()
    with pytest.raises(NotFound) as err:
        gw.prepare_chat(body(model="nope"), TraceRecord(project_id="p", name="chat"))
    assert "fake-chat" in err.value.message and err.value.code == "model_not_found"
    with pytest.raises(InvalidRequest) as err2:
        gw.prepare_chat(body(model="fake-embed"), TraceRecord(project_id="p", name="chat"))
    assert "/v1/embeddings" in err2.value.message


@pytest.mark.parametrize(
    ("kind", "expected", "status"),
    [
        ("rate_limit", RateLimited, 429),
        ("timeout", UpstreamTimeout, 504),
        ("unavailable", UpstreamError, 502),
        ("upstream", UpstreamError, 502),
        ("auth", UpstreamError, 502),
        ("bad_request", InvalidRequest, 400),
        ("context_window", InvalidRequest, 400),
    ],
)
def test_provider_errors_map_to_statuses(kind: Any, expected: type[ApiError], status: int) -> None:
    err = provider_error_to_api(ProviderError(kind, "boom", status=503, retry_after=2.4), "openai/x")
    assert isinstance(err, expected) and err.status == status
    assert "upstream openai/x: boom" in err.message
    if kind == "rate_limit":
        assert err.headers == {"retry-after": "2"}


async def test_embeddings_float_and_base64() -> None:
    import base64

    import numpy as np

    gw = make_gateway()
    trace = TraceRecord(project_id="p", name="embeddings")
    floats = await gw.embeddings({"model": "fake-embed", "input": ["a b", "c"]}, trace)
    assert len(floats["data"]) == 2 and len(floats["data"][0]["embedding"]) == 8
    b64 = await gw.embeddings({"model": "fake-embed", "input": "a b", "encoding_format": "base64"}, trace)
    decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, floats["data"][0]["embedding"], atol=1e-7)
    assert trace.spans[0].kind == "embedding" and trace.spans[0].input_tokens == 3
