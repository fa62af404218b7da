"""AnthropicProvider: request/response translation, and calls against a local Messages API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pilothouse.config import Deployment
from pilothouse.gateway.providers.anthropic import AnthropicProvider
from pilothouse.gateway.providers.anthropic_wire import translate_request, translate_response, translate_stream
from pilothouse.gateway.providers.base import ChatRequest, Provider, ProviderError
from tests.support.anthropic_server import API_KEY, FINAL_OUTPUT_TOKENS, TEXT_PIECES, AnthropicServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}


@pytest.fixture
async def server() -> AsyncIterator[AnthropicServer]:
    srv = AnthropicServer()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def provider(server: AnthropicServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AnthropicProvider]:
    monkeypatch.setenv("PH_TEST_ANTHROPIC_KEY", API_KEY)
    deployment = Deployment(
        provider="anthropic",
        model="claude-test",
        base_url=server.base_url,
        api_key_env="PH_TEST_ANTHROPIC_KEY",
        timeout_s=5,
    )
    prov = AnthropicProvider(deployment)
    yield prov
    await prov.aclose()


def _req(messages: list[dict[str, Any]], **params: Any) -> ChatRequest:
    return ChatRequest(model="claude-test", messages=messages, params=params)


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
    {"role": "user", "content": "And tomorrow?"},
]


# --- translation (no network) -------------------------------------------------------------------


def test_protocol_and_capabilities() -> None:
    prov = AnthropicProvider(Deployment(provider="anthropic", model="m"))
    assert isinstance(prov, Provider)
    assert (prov.name, prov.supports_streaming, prov.supports_tools, prov.supports_embeddings) == (
        "anthropic",
        True,
        True,
        False,
    )


def test_translate_request_hoists_system_and_merges_turns() -> None:
    body = translate_request(
        _req(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                {"role": "assistant", "content": "Hello"},
            ],
            temperature=1.7,
            top_p=0.9,
            stop="END",
            user="u-1",
            seed=3,
        )
    )
    assert body["system"] == "Be brief.\n\nNo emoji."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
    ]
    assert body["max_tokens"] == 1024
    assert body["temperature"] == 1.0
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert "seed" not in body


def test_translate_request_tools_and_results() -> None:
    body = translate_request(
        _req(TOOL_CONVERSATION, tools=[WEATHER_TOOL], tool_choice="required", max_completion_tokens=50)
    )
    assert body["max_tokens"] == 50
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert body["tool_choice"] == {"type": "any"}
    assistant, results = body["messages"][1], body["messages"][2]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Rome"}},
    ]
    assert results["role"] == "user"
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C sunny"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        {"type": "text", "text": "And tomorrow?"},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_translate_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    params: dict[str, Any] = {"tools": [WEATHER_TOOL]}
    if choice is not None:
        params["tool_choice"] = choice
    if parallel is not None:
        params["parallel_tool_calls"] = parallel
    assert translate_request(_req([{"role": "user", "content": "x"}], **params)).get("tool_choice") == expected


def test_translate_request_refusals() -> None:
    with pytest.raises(ProviderError) as info:
        translate_request(_req([{"role": "user", "content": "x"}], n=2))
    assert info.value.kind == "bad_request"
    bad_args = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    with pytest.raises(ProviderError, match="only function tools"):
        translate_request(_req([{"role": "user", "content": "x"}], tools=[{"type": "custom", "custom": {}}]))
    with pytest.raises(ProviderError, match="not JSON"):
        translate_request(_req([{"role": "assistant", "content": None, "tool_calls": [bad_args]}]))


def test_translate_response_format_becomes_instruction() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = translate_request(_req([{"role": "user", "content": "x"}], response_format=fmt))
    assert "JSON" in body["system"] and '"integer"' in body["system"]


def test_translate_response_tool_use() -> None:
    message = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 2,
            "output_tokens": 7,
        },
    }
    body = translate_response(message)
    choice = body["choices"][0]
    assert body["object"] == "chat.completion"
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "toolu_1" and call["type"] == "function"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert body["usage"] == {
        "prompt_tokens": 16,
        "completion_tokens": 7,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    for reason, expected in [("end_turn", "stop"), ("max_tokens", "length"), ("stop_sequence", "stop")]:
        assert translate_response({**message, "stop_reason": reason})["choices"][0]["finish_reason"] == expected


async def _events(*events: tuple[str, Any]) -> AsyncIterator[tuple[str, bytes]]:
    for name, data in events:
        yield name, data if isinstance(data, bytes) else orjson.dumps(data)


async def test_translate_stream_without_a_server() -> None:
    start = {"type": "message_start", "message": {"id": "msg_9", "model": "claude-x", "usage": {"input_tokens": 3}}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    end = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 1}}
    chunks = [
        c
        async for c in translate_stream(
            _events(("message_start", start), ("content_block_delta", delta), ("message_delta", end)), "m"
        )
    ]
    assert [c["choices"][0]["delta"] for c in chunks[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-1]["usage"]["total_tokens"] == 4
    assert {c["id"] for c in chunks} == {"msg_9"}

    with pytest.raises(ProviderError) as info:
        async for _ in translate_stream(_events(("message_start", start), ("ping", b"{not json")), "m"):
            pass
    assert (info.value.kind, info.value.status) == ("upstream", 200)
    with pytest.raises(ProviderError) as info:  # ended without a stop reason
        async for _ in translate_stream(_events(("message_start", start), ("content_block_delta", delta)), "m"):
            pass
    assert info.value.kind == "unavailable"


# --- against the local Messages API server ------------------------------------------------------


async def test_chat_text(provider: AnthropicProvider, server: AnthropicServer) -> None:
    result = await provider.chat(_req([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]))
    assert server.problems == []
    sent, headers = server.requests[0], server.headers[0]
    assert headers["x-api-key"] == API_KEY and headers["anthropic-version"] == "2023-06-01"
    assert sent["system"] == "Be kind." and sent["max_tokens"] == 1024
    assert result.body["choices"][0]["message"] == {"role": "assistant", "content": "".join(TEXT_PIECES)}
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cached_input_tokens) == (
        30,
        FINAL_OUTPUT_TOKENS,
        5,
    )


async def test_chat_tool_round_trip(provider: AnthropicProvider, server: AnthropicServer) -> None:
    server.scenario = "tool"
    result = await provider.chat(_req(TOOL_CONVERSATION, tools=[WEATHER_TOOL], tool_choice="auto"))
    assert server.problems == []
    sent = server.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["tools"][0]["name"] == "get_weather" and sent["tool_choice"] == {"type": "auto"}
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    (call,) = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01" and call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "Paris", "unit": "celsius"}


async def test_stream_text(provider: AnthropicProvider, server: AnthropicServer) -> None:
    chunks = [c async for c in provider.chat_stream(_req([{"role": "user", "content": "Hi"}], max_tokens=20))]
    assert server.problems == [] and server.requests[0]["stream"] is True
    assert server.requests[0]["max_tokens"] == 20
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "msg_01" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(TEXT_PIECES)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": FINAL_OUTPUT_TOKENS,
        "total_tokens": 30 + FINAL_OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 5},
    }


async def test_stream_tool_call_argument_deltas(provider: AnthropicProvider, server: AnthropicServer) -> None:
    server.scenario = "tool"
    request = _req([{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL])
    chunks = [c async for c in provider.chat_stream(request)]
    assert server.problems == []
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(tc["index"] == 0 for tc in calls)
    assert len(calls) == 4  # the start, then one per non-empty input_json_delta
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert orjson.loads(arguments) == {"location": "Paris", "unit": "celsius"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Let me check."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == FINAL_OUTPUT_TOKENS


async def test_overloaded_529(provider: AnthropicProvider, server: AnthropicServer) -> None:
    server.scenario = "overloaded"
    with pytest.raises(ProviderError) as info:
        await provider.chat(_req([{"role": "user", "content": "Hi"}]))
    assert (info.value.kind, info.value.status) == ("unavailable", 529)
    assert "Overloaded" in info.value.message
    with pytest.raises(ProviderError) as info:
        async for _ in provider.chat_stream(_req([{"role": "user", "content": "Hi"}])):
            pass
    assert (info.value.kind, info.value.status) == ("unavailable", 529)


async def test_stream_error_event(provider: AnthropicProvider, server: AnthropicServer) -> None:
    server.scenario = "stream_error"
    seen: list[dict[str, Any]] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in provider.chat_stream(_req([{"role": "user", "content": "Hi"}])):
            seen.append(chunk)
    assert info.value.kind == "unavailable" and "Overloaded" in info.value.message
    assert len(seen) == 1  # the role chunk from message_start came first


async def test_stream_truncated(provider: AnthropicProvider, server: AnthropicServer) -> None:
    server.scenario = "truncated"
    with pytest.raises(ProviderError) as info:
        async for _ in provider.chat_stream(_req([{"role": "user", "content": "Hi"}])):
            pass
    assert info.value.kind == "unavailable"


@pytest.mark.parametrize(
    ("scenario", "kind", "status"),
    [("rate_limited", "rate_limit", 429), ("too_long", "context_window", 400), ("garbled", "upstream", 200)],
)
async def test_error_mapping(
    provider: AnthropicProvider, server: AnthropicServer, scenario: Any, kind: str, status: int
) -> None:
    server.scenario = scenario
    with pytest.raises(ProviderError) as info:
        await provider.chat(_req([{"role": "user", "content": "Hi"}]))
    assert (info.value.kind, info.value.status) == (kind, status)
    if scenario == "rate_limited":
        assert info.value.retry_after == 7.0
        assert "exceeded your rate limit" in info.value.message


async def test_bad_key_is_auth(server: AnthropicServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PH_TEST_ANTHROPIC_KEY", "wrong")
    deployment = Deployment(
        provider="anthropic", model="m", base_url=server.base_url, api_key_env="PH_TEST_ANTHROPIC_KEY"
    )
    prov = AnthropicProvider(deployment)
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(_req([{"role": "user", "content": "Hi"}]))
    finally:
        await prov.aclose()
    assert (info.value.kind, info.value.status) == ("auth", 401)
    assert "invalid x-api-key" in info.value.message
