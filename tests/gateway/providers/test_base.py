"""The `Provider` base class: what a provider that implements only `chat` gets, and how the registry treats
classes that are not providers."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest

from pilothouse.config import ConfigError, Deployment, Settings
from pilothouse.gateway.providers import registry
from pilothouse.gateway.providers.base import ChatRequest, ChatResult, Provider, ProviderError, Usage
from pilothouse.gateway.providers.registry import ProviderPool, provider_class


class ChatOnly(Provider):
    """The smallest provider: one method and a name."""

    name: ClassVar[str] = "chat-only"

    async def chat(self, request: ChatRequest) -> ChatResult:
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        message = {"role": "assistant", "content": "hi there", "tool_calls": [call]}
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 7,
            "model": request.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        return ChatResult(body=body, usage=Usage(3, 2))


class Duck:
    """Has a provider's methods but is not one."""

    name = "duck"

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        self.deployment = deployment

    async def chat(self, request: ChatRequest) -> ChatResult:
        raise NotImplementedError


class NoChat(Provider):
    name: ClassVar[str] = "no-chat"


async def test_defaults_of_a_chat_only_provider() -> None:
    provider = ChatOnly(Deployment(provider="chat-only", model="m"))
    assert (provider.supports_streaming, provider.supports_tools, provider.supports_embeddings) == (True, False, False)
    assert not provider.counts_tokens and provider.count_input_tokens([{"role": "user", "content": "x"}]) is None

    chunks = [c async for c in provider.chat_stream(ChatRequest("m", []))]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "hi there",
        "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert [c["choices"][0]["finish_reason"] for c in chunks[:2]] == [None, "tool_calls"]
    assert chunks[-1] == {
        **chunks[-1],
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }

    with pytest.raises(ProviderError, match="the chat-only provider does not support embeddings") as info:
        await provider.embed("m", ["x"])
    assert info.value.kind == "bad_request"
    await provider.warm()
    await provider.aclose()
    await provider.aclose()


def _plugins(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    found = [EntryPoint(name=name, value=value, group=registry.GROUP) for name, value in targets.items()]

    def entry_points(group: str) -> list[EntryPoint]:
        return found if group == registry.GROUP else []

    monkeypatch.setattr(registry, "entry_points", entry_points)


def test_plugins_must_subclass_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    module = __name__
    _plugins(monkeypatch, good=f"{module}:ChatOnly", duck=f"{module}:Duck", half=f"{module}:NoChat")
    assert provider_class("good") is ChatOnly
    provider = ProviderPool(Settings()).get(Deployment(provider="good", model="m"))
    assert isinstance(provider, ChatOnly) and provider.deployment.model == "m"

    with pytest.raises(ConfigError, match=rf"'duck' \({module}:Duck\) is not a subclass of .*Provider"):
        provider_class("duck")
    with pytest.raises(ConfigError, match=r"'half' .* does not implement chat"):
        provider_class("half")
    with pytest.raises(ConfigError, match=r"unknown provider 'nope': installed providers are .*duck, fake"):
        provider_class("nope")


def test_builtins_are_providers() -> None:
    classes: list[Any] = [provider_class(name) for name in ("fake", "local", "openai", "anthropic")]
    assert all(issubclass(cls, Provider) for cls in classes)
    assert [cls.name for cls in classes] == ["fake", "local", "openai", "anthropic"]
