"""The provider contract, run over every built-in provider against real counterparts: `fake`; `local` on the
bundled SmolLM2 GGUF and MiniLM; `openai` against a local OpenAI-compatible upstream (`openai_upstream`);
`anthropic` against the local Messages API server (`tests/support/anthropic_server.py`).

A new provider joins by adding a harness builder to HARNESSES and the error kinds its counterpart can
produce to FAILURES.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from pilothouse.config import Deployment, LocalModelSettings, Settings
from pilothouse.gateway.providers.anthropic import AnthropicProvider
from pilothouse.gateway.providers.base import ChatRequest, Chunk, ErrorKind, Provider, ProviderError
from pilothouse.gateway.providers.fake import FakeProvider
from pilothouse.gateway.providers.local import LocalProvider
from pilothouse.gateway.providers.openai_compat import OpenAICompatProvider
from pilothouse.gateway.providers.registry import provider_class
from tests.gateway.providers.openai_upstream import API_KEY as OPENAI_KEY
from tests.gateway.providers.openai_upstream import OpenAIUpstream
from tests.support.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.support.anthropic_server import AnthropicServer

HELLO = [{"role": "user", "content": "Say hello to the world."}]
PARAMS = {"max_tokens": 4, "temperature": 0, "seed": 1}
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
ANTHROPIC_ENV = "PH_CONFORMANCE_ANTHROPIC_KEY"
LOCAL_CHAT = Deployment(provider="local", model="SmolLM2-135M-Instruct")
LOCAL_EMBED = Deployment(provider="local", model="all-MiniLM-L6-v2")
LOCAL_SETTINGS = Settings(local=LocalModelSettings(n_ctx=2048))

Failure = Callable[[], Awaitable[tuple[Provider, ChatRequest]]]


@dataclass
class Harness:
    """One provider under test and the means to drive its counterpart."""

    provider: Provider
    model: str
    """The model id requests name."""
    fresh: Callable[[], Provider]
    """A new instance for the same deployment (closed with the harness)."""
    embedder: Provider
    """The instance asked to embed (the embedding deployment where that is a separate one)."""
    embed_model: str
    failures: dict[str, Failure]
    """Error kind -> a provider and a request that its counterpart fails that way."""
    tools_on: Callable[[], None] = lambda: None
    """Make the counterpart answer with tool calls when tools are offered."""
    honours_max_tokens: bool = True
    """False where the counterpart is canned and ignores max_tokens."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- harnesses ---------------------------------------------------------------------------------------


@asynccontextmanager
async def _fake(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    def fake(**options: Any) -> Provider:
        return FakeProvider(Deployment(provider="fake", model="fake-model", options={"tool_call": True, **options}))

    def failing(kind: str) -> Failure:
        async def provoke() -> tuple[Provider, ChatRequest]:
            return fake(fail=kind), ChatRequest("fake-model", HELLO)

        return provoke

    provider = fake()
    failures = {kind: failing(kind) for kind in FAILURES["fake"]}
    yield Harness(provider, "fake-model", fake, provider, "fake-embed", failures)


class LocalModels:
    """The local chat and embedding providers, loaded on first use and shared by the module's tests."""

    def __init__(self) -> None:
        self.providers: tuple[LocalProvider, LocalProvider] | None = None

    async def get(self) -> tuple[LocalProvider, LocalProvider]:
        if self.providers is None:
            if importlib.util.find_spec("llama_cpp") is None:
                pytest.fail("llama-cpp-python is not installed: run scripts/install.sh --dev")
            chat, embed = LocalProvider(LOCAL_CHAT, LOCAL_SETTINGS), LocalProvider(LOCAL_EMBED, LOCAL_SETTINGS)
            await chat.warm()
            await embed.warm()
            self.providers = chat, embed
        return self.providers

    async def aclose(self) -> None:
        for provider in self.providers or ():
            await provider.aclose()


@pytest.fixture(scope="module")
def local_models() -> Iterator[LocalModels]:
    models = LocalModels()
    yield models
    asyncio.run(models.aclose())


@asynccontextmanager
async def _local(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    chat, embed = await request.getfixturevalue("local_models").get()
    made: list[Provider] = []

    def fresh() -> Provider:  # shares the loaded model (reference-counted)
        made.append(LocalProvider(LOCAL_CHAT, LOCAL_SETTINGS))
        return made[-1]

    async def tools() -> tuple[Provider, ChatRequest]:
        return chat, ChatRequest("smollm2", WEATHER, {"tools": [WEATHER_TOOL]})

    async def closed() -> tuple[Provider, ChatRequest]:
        provider = fresh()
        await provider.aclose()
        return provider, ChatRequest("smollm2", HELLO)

    async def too_long() -> tuple[Provider, ChatRequest]:
        return chat, ChatRequest("smollm2", [{"role": "user", "content": "word " * 2100}], {"max_tokens": 1})

    failures: dict[str, Failure] = {"bad_request": tools, "unavailable": closed, "context_window": too_long}
    try:
        yield Harness(chat, "smollm2", fresh, embed, "all-MiniLM-L6-v2", failures)
    finally:
        for provider in made:
            await provider.aclose()


@asynccontextmanager
async def _openai(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("PH_CONFORMANCE_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("PH_CONFORMANCE_WRONG_KEY", "sk-wrong")
    upstream = OpenAIUpstream()
    base = await upstream.start()
    made: list[Provider] = []

    def openai(base_url: str = base, key: str = "PH_CONFORMANCE_OPENAI_KEY", **fields: Any) -> Provider:
        deployment = Deployment(provider="openai", model="gpt-conf", base_url=base_url, api_key_env=key, **fields)
        made.append(OpenAICompatProvider(deployment))
        return made[-1]

    def calling(model: str, messages: list[dict[str, Any]] = HELLO, **fields: Any) -> Failure:
        async def provoke() -> tuple[Provider, ChatRequest]:
            return openai(**fields), ChatRequest(model, messages)

        return provoke

    failures: dict[str, Failure] = {
        "timeout": calling("silent", timeout_s=0.3),
        "bad_request": calling("gpt-conf", [{"role": "robot", "content": "beep"}]),
        "rate_limit": calling("rate-limited"),
        "auth": calling("gpt-conf", key="PH_CONFORMANCE_WRONG_KEY"),
        "unavailable": calling("gpt-conf", base_url=f"http://127.0.0.1:{_free_port()}/v1", connect_timeout_s=2),
        "context_window": calling("too-long"),
    }
    provider = openai()
    try:
        yield Harness(provider, "gpt-conf", openai, provider, "text-embedding-conf", failures)
    finally:
        for made_provider in made:
            await made_provider.aclose()
        await upstream.close()


@asynccontextmanager
async def _anthropic(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    monkeypatch.setenv("PH_CONFORMANCE_WRONG_KEY", "sk-ant-wrong")
    server, silent = AnthropicServer(), OpenAIUpstream()
    await server.start()
    silent_root = (await silent.start()).removesuffix("/v1")
    made: list[Provider] = []

    def anthropic(base_url: str = server.base_url, key: str = ANTHROPIC_ENV, **fields: Any) -> Provider:
        deployment = Deployment(provider="anthropic", model="claude-test", base_url=base_url, api_key_env=key, **fields)
        made.append(AnthropicProvider(deployment))
        return made[-1]

    def calling(scenario: Any = "text", messages: list[dict[str, Any]] = HELLO, **fields: Any) -> Failure:
        async def provoke() -> tuple[Provider, ChatRequest]:
            server.scenario = scenario
            return anthropic(**fields), ChatRequest("claude-test", messages)

        return provoke

    def tools_on() -> None:
        server.scenario = "tool"

    failures: dict[str, Failure] = {
        "timeout": calling(base_url=silent_root, timeout_s=0.3),
        "bad_request": calling(messages=[{"role": "system", "content": "Only a system message."}]),
        "rate_limit": calling("rate_limited"),
        "auth": calling(key="PH_CONFORMANCE_WRONG_KEY"),
        "unavailable": calling("overloaded"),
        "context_window": calling("too_long"),
    }
    provider = anthropic()
    try:
        yield Harness(provider, "claude-test", anthropic, provider, "claude-test", failures, tools_on, False)
    finally:
        for made_provider in made:
            await made_provider.aclose()
        await silent.close()
        await server.close()


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Harness]]] = {
    "fake": _fake,
    "local": _local,
    "openai": _openai,
    "anthropic": _anthropic,
}
ALL_KINDS = ("timeout", "bad_request", "rate_limit", "auth", "unavailable", "context_window")
FAILURES: dict[str, tuple[str, ...]] = {
    "fake": ALL_KINDS,
    "local": ("bad_request", "unavailable", "context_window"),
    "openai": ALL_KINDS,
    "anthropic": ALL_KINDS,
}


MARKS = {"local": [pytest.mark.model]}


def _param(name: str, *rest: str) -> Any:
    return pytest.param(name, *rest, marks=MARKS.get(name, []), id="-".join((name, *rest)))


@pytest.fixture(params=[_param(name) for name in HARNESSES])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with HARNESSES[request.param](request) as built:
        yield built


def _text(chunks: list[Chunk]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def _drain(provider: Provider, request: ChatRequest) -> list[Chunk]:
    return [chunk async for chunk in provider.chat_stream(request)]


# -- the contract -------------------------------------------------------------------------------------


def test_subclasses_the_base_and_declares_capabilities(harness: Harness) -> None:
    cls = type(harness.provider)
    assert isinstance(harness.provider, Provider)
    for flag in ("supports_streaming", "supports_tools", "supports_embeddings", "counts_tokens"):
        assert isinstance(getattr(cls, flag), bool), flag
    assert provider_class(cls.name) is cls  # registered under its own name


async def test_chat(harness: Harness) -> None:
    result = await harness.provider.chat(ChatRequest(harness.model, HELLO, dict(PARAMS)))
    body = result.body
    assert body["object"] == "chat.completion" and body["id"]
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = result.usage
    assert usage is not None and not usage.estimated
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (
        usage.input_tokens,
        usage.output_tokens,
    )
    if harness.honours_max_tokens:
        assert usage.output_tokens <= PARAMS["max_tokens"]


async def test_chat_stream(harness: Harness) -> None:
    assert harness.provider.supports_streaming
    request = ChatRequest(harness.model, HELLO, dict(PARAMS))
    whole = await harness.provider.chat(request)
    chunks = await _drain(harness.provider, request)

    assert all(c["object"] == "chat.completion.chunk" and isinstance(c["choices"], list) for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [choice["finish_reason"] for c in chunks for choice in c["choices"] if choice.get("finish_reason")]
    assert finishes == [whole.body["choices"][0]["finish_reason"]]
    assert _text(chunks) == whole.body["choices"][0]["message"]["content"]  # deterministic request
    with_usage = [c for c in chunks if c.get("usage")]
    assert with_usage == [chunks[-1]] and chunks[-1]["choices"] == []  # usage last, when reported
    assert whole.usage is not None
    usage = chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (whole.usage.input_tokens, whole.usage.output_tokens)


async def test_embed_or_the_clear_refusal(harness: Harness) -> None:
    texts = ["hello world", "a second, different text"]
    if not harness.provider.supports_embeddings:
        with pytest.raises(ProviderError, match="does not support embeddings") as info:
            await harness.provider.embed(harness.embed_model, texts)
        assert info.value.kind == "bad_request"
        return
    result = await harness.embedder.embed(harness.embed_model, texts)
    assert len(result.vectors) == len(texts)
    dims = {len(vector) for vector in result.vectors}
    assert len(dims) == 1 and dims.pop() > 0
    assert all(isinstance(x, float) for vector in result.vectors for x in vector)
    assert result.vectors[0] != result.vectors[1]
    assert result.input_tokens > 0


async def test_tools_round_trip_or_refusal(harness: Harness) -> None:
    provider = harness.provider
    request = ChatRequest(harness.model, WEATHER, {"tools": [WEATHER_TOOL], "max_tokens": 16})
    if not provider.supports_tools:
        with pytest.raises(ProviderError) as info:
            await provider.chat(request)
        assert info.value.kind == "bad_request"
        return
    harness.tools_on()
    result = await provider.chat(request)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] and call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert isinstance(orjson.loads(call["function"]["arguments"]), dict)

    chunks = await _drain(provider, request)
    deltas = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert deltas[0]["index"] == 0 and deltas[0]["id"] and deltas[0]["function"]["name"] == "get_weather"
    arguments = "".join(d["function"].get("arguments") or "" for d in deltas if d["index"] == 0)
    assert isinstance(orjson.loads(arguments), dict)
    assert [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch.get("finish_reason")] == ["tool_calls"]

    # The call and its result, sent back, are a conversation the upstream accepts.
    follow_up = [
        *WEATHER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"},
    ]
    answer = await provider.chat(ChatRequest(harness.model, follow_up, {"tools": [WEATHER_TOOL], "max_tokens": 16}))
    assert answer.body["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")


async def test_count_input_tokens(harness: Harness) -> None:
    provider = harness.provider
    counted = provider.count_input_tokens(HELLO)
    if not provider.counts_tokens:
        assert counted is None
        return
    assert isinstance(counted, int) and counted > 0
    result = await provider.chat(ChatRequest(harness.model, HELLO, {"max_tokens": 1}))
    assert result.usage is not None and result.usage.input_tokens == counted


@pytest.mark.parametrize(
    ("harness", "kind"),
    [_param(name, kind) for name, kinds in FAILURES.items() for kind in kinds],
    indirect=["harness"],
)
async def test_errors_are_classified(harness: Harness, kind: ErrorKind) -> None:
    provider, request = await harness.failures[kind]()
    with pytest.raises(ProviderError) as info:
        await provider.chat(request)
    assert info.value.kind == kind, info.value.message
    with pytest.raises(ProviderError) as info:
        await _drain(provider, request)
    assert info.value.kind == kind, info.value.message


async def test_warm_then_aclose_twice(harness: Harness) -> None:
    used, unused = harness.fresh(), harness.fresh()
    await used.warm()
    result = await used.chat(ChatRequest(harness.model, HELLO, {"max_tokens": 2}))
    assert result.body["choices"]
    for provider in (used, unused):
        await provider.aclose()
        await provider.aclose()
