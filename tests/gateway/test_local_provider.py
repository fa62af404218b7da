"""The local provider on the real bundled models: SmolLM2-135M (llama.cpp) and all-MiniLM-L6-v2."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pilothouse.config import Deployment, LocalModelSettings, Settings
from pilothouse.gateway.providers import local_runtime as local_module
from pilothouse.gateway.providers.base import ChatRequest, Provider, ProviderError
from pilothouse.gateway.providers.local import LocalProvider

pytestmark = pytest.mark.model

CHAT = Deployment(provider="local", model="SmolLM2-135M-Instruct", context_window=8192)
EMBED = Deployment(provider="local", model="all-MiniLM-L6-v2", context_window=256)
STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
# A small context keeps loading cheap; the default (8192) is exercised by the server tests.
SETTINGS = Settings(local=LocalModelSettings(n_ctx=2048))


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def chat_provider() -> Iterator[LocalProvider]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed: run scripts/install.sh --dev")
    provider = LocalProvider(CHAT, SETTINGS)
    _run(provider.warm())
    yield provider
    _run(provider.aclose())


@pytest.fixture(scope="module")
def embed_provider() -> Iterator[LocalProvider]:
    provider = LocalProvider(EMBED, SETTINGS)
    _run(provider.warm())
    yield provider
    _run(provider.aclose())


def _request(messages: list[dict[str, Any]] | None = None, **params: Any) -> ChatRequest:
    return ChatRequest(model="smollm2-135m", messages=messages or STORY, params=params)


async def _stream(provider: LocalProvider, request: ChatRequest) -> list[dict[str, Any]]:
    return [chunk async for chunk in provider.chat_stream(request)]


def _text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_capabilities(chat_provider: LocalProvider) -> None:
    assert isinstance(chat_provider, Provider)
    assert (LocalProvider.name, LocalProvider.supports_tools) == ("local", False)
    assert LocalProvider.supports_streaming and LocalProvider.supports_embeddings
    assert chat_provider.loaded


async def test_chat_honours_max_tokens(chat_provider: LocalProvider) -> None:
    result = await chat_provider.chat(_request(max_tokens=6, seed=1))
    body = result.body
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "smollm2-135m"
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    assert result.usage is not None and not result.usage.estimated
    assert result.usage.output_tokens == 6
    assert result.usage.input_tokens > 10
    assert body["usage"] == {
        "prompt_tokens": result.usage.input_tokens,
        "completion_tokens": 6,
        "total_tokens": result.usage.input_tokens + 6,
    }

    result = await chat_provider.chat(_request(max_completion_tokens=3, seed=1))
    assert result.usage is not None and result.usage.output_tokens <= 3


async def test_short_answer_finishes_with_stop(chat_provider: LocalProvider) -> None:
    result = await chat_provider.chat(
        _request([{"role": "user", "content": "What is the capital of France?"}], max_tokens=40, temperature=0)
    )
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert "Paris" in result.body["choices"][0]["message"]["content"]
    assert result.usage is not None and result.usage.output_tokens < 40


async def test_stream_matches_whole_answer_and_ends_with_usage(chat_provider: LocalProvider) -> None:
    request = _request(max_tokens=12, seed=7, temperature=0.8)
    whole = await chat_provider.chat(request)
    chunks = await _stream(chat_provider, request)

    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "smollm2-135m" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert _text(chunks) == whole.body["choices"][0]["message"]["content"]
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "length"
    last = chunks[-1]
    assert last["choices"] == []
    assert whole.usage is not None
    assert last["usage"] == {
        "prompt_tokens": whole.usage.input_tokens,
        "completion_tokens": 12,
        "total_tokens": whole.usage.input_tokens + 12,
    }


async def test_seed_makes_sampling_reproducible(chat_provider: LocalProvider) -> None:
    request = _request(max_tokens=16, seed=1234, temperature=0.8)
    first = await chat_provider.chat(request)
    await chat_provider.chat(_request(max_tokens=4, temperature=1.0))  # disturb the KV cache
    second = await chat_provider.chat(request)
    assert first.body["choices"][0]["message"]["content"] == second.body["choices"][0]["message"]["content"]


async def test_stop_sequences(chat_provider: LocalProvider) -> None:
    base = await chat_provider.chat(_request(max_tokens=24, seed=3, temperature=0))
    text = base.body["choices"][0]["message"]["content"]
    assert len(text) > 12
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    expected = text[: text.index(stop)]

    cut = await chat_provider.chat(_request(max_tokens=24, seed=3, temperature=0, stop=[stop, "@@@@"]))
    assert cut.body["choices"][0]["message"]["content"] == expected
    assert cut.body["choices"][0]["finish_reason"] == "stop"
    assert cut.usage is not None and base.usage is not None
    assert cut.usage.output_tokens <= base.usage.output_tokens

    chunks = await _stream(chat_provider, _request(max_tokens=24, seed=3, temperature=0, stop=stop))
    assert _text(chunks) == expected
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


async def test_concurrent_requests_all_succeed(chat_provider: LocalProvider) -> None:
    async def one(i: int) -> str:
        if i % 2:
            return _text(await _stream(chat_provider, _request(max_tokens=8, seed=i)))
        result = await chat_provider.chat(_request(max_tokens=8, seed=i))
        return str(result.body["choices"][0]["message"]["content"])

    texts = await asyncio.gather(*(one(i) for i in range(4)))
    assert all(texts)


async def test_event_loop_stays_responsive(chat_provider: LocalProvider) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await chat_provider.chat(_request(max_tokens=24, seed=5))
    finally:
        task.cancel()
    assert ticks >= 3


async def test_closing_a_stream_stops_generation() -> None:
    # Sampling from the whole vocabulary at a high temperature rarely ends on its own.
    wild = LocalProvider(
        Deployment(provider="local", model="SmolLM2-135M-Instruct", options={"min_p": 0.0, "top_k": 0}),
        SETTINGS,
    )
    try:
        stream = wild.chat_stream(_request(max_tokens=1500, temperature=2.0, top_p=1.0))
        seen = 0
        async for chunk in stream:
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                seen += 1
                if seen == 3:
                    break
        await stream.aclose()
        start = time.perf_counter()
        result = await wild.chat(_request(max_tokens=2, seed=1))
        assert time.perf_counter() - start < 6.0, "the abandoned stream kept generating"
        assert result.usage is not None and result.usage.output_tokens <= 2
    finally:
        await wild.aclose()


async def test_count_input_tokens_is_exact(chat_provider: LocalProvider) -> None:
    conversations: list[list[dict[str, Any]]] = [
        [{"role": "user", "content": "Hi"}],
        [
            {"role": "system", "content": "You answer in French."},
            {"role": "user", "content": "Hello there, how are you? 🙂"},
            {"role": "assistant", "content": "Très bien, merci."},
            {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "you?"}]},
        ],
    ]
    for messages in conversations:
        counted = chat_provider.count_input_tokens(messages)
        result = await chat_provider.chat(_request(messages, max_tokens=1))
        assert result.usage is not None
        assert counted == result.usage.input_tokens == result.body["usage"]["prompt_tokens"]


async def test_json_response_format(chat_provider: LocalProvider) -> None:
    result = await chat_provider.chat(
        _request(
            [{"role": "user", "content": "Describe a cat as JSON with name and age."}],
            max_tokens=24,
            seed=2,
            response_format={"type": "json_object"},
        )
    )
    assert result.body["choices"][0]["message"]["content"].lstrip().startswith("{")


async def test_bad_params_are_bad_requests(chat_provider: LocalProvider) -> None:
    for params in ({"max_tokens": 0}, {"temperature": "hot"}, {"n": 2}, {"stop": [1]}, {"top_p": 3}):
        with pytest.raises(ProviderError) as info:
            await chat_provider.chat(_request(**params))
        assert info.value.kind == "bad_request", params


async def test_prompt_over_context_window() -> None:
    small = LocalProvider(CHAT, Settings(local=LocalModelSettings(n_ctx=256)))  # llama.cpp's minimum
    try:
        messages = [{"role": "user", "content": "word " * 400}]
        assert small.count_input_tokens(messages) > 256
        with pytest.raises(ProviderError) as info:
            await small.chat(_request(messages, max_tokens=4))
        assert info.value.kind == "context_window"
        assert "256" in info.value.message
        with pytest.raises(ProviderError) as info:
            await _stream(small, _request(messages, max_tokens=4))
        assert info.value.kind == "context_window"
        # A prompt that fits but leaves little room gets cut at the context's end.
        result = await small.chat(_request([{"role": "user", "content": "word " * 180}], max_tokens=500))
        assert result.usage is not None
        assert result.usage.input_tokens + result.usage.output_tokens <= 256
    finally:
        await small.aclose()
    assert all(key[1] != 256 for key in local_module._chat_models), "the last holder frees the model"


async def test_models_are_shared(chat_provider: LocalProvider) -> None:
    other = LocalProvider(Deployment(provider="local", model="SmolLM2-135M-Instruct", weight=2), SETTINGS)
    try:
        await other.warm()
        assert other._chat is chat_provider._chat
    finally:
        await other.aclose()
    assert chat_provider._chat is not None and not chat_provider._chat.closed


async def test_embed(embed_provider: LocalProvider) -> None:
    result = await embed_provider.embed("all-MiniLM-L6-v2", ["Hello world", "The cat sits on the mat", ""])
    assert len(result.vectors) == 3
    assert all(len(v) == 384 and isinstance(v[0], float) for v in result.vectors)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5) for v in result.vectors)
    assert result.input_tokens == 4 + 8 + 2
    assert result.vectors[0][:3] == pytest.approx([-0.0345, 0.0310, 0.0067], abs=2e-4)


async def test_wrong_kind_is_a_bad_request(chat_provider: LocalProvider, embed_provider: LocalProvider) -> None:
    with pytest.raises(ProviderError) as info:
        await chat_provider.embed("SmolLM2-135M-Instruct", ["x"])
    assert info.value.kind == "bad_request" and "chat model" in info.value.message
    with pytest.raises(ProviderError) as info:
        await embed_provider.chat(_request(max_tokens=2))
    assert info.value.kind == "bad_request" and "embedding model" in info.value.message
    with pytest.raises(ProviderError) as info:
        await _stream(embed_provider, _request(max_tokens=2))
    assert info.value.kind == "bad_request"
    with pytest.raises(ProviderError):
        embed_provider.count_input_tokens(STORY)
