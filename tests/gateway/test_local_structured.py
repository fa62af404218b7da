"""Structured output on the bundled model: OpenAI `response_format` becomes a llama.cpp grammar, so the answer
follows the JSON schema (an enum holds a value to the listed ones), and a schema llama.cpp cannot follow is a
bad request, not a failed generation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pilothouse.config import Deployment, LocalModelSettings, Settings
from pilothouse.gateway.providers.base import ChatRequest, ProviderError
from pilothouse.gateway.providers.local import LocalProvider

pytestmark = pytest.mark.model

CHAT = Deployment(provider="local", model="SmolLM2-135M-Instruct", context_window=8192)
SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
        "count": {"type": "integer", "enum": [1, 2, 3]},
    },
    "required": ["colour", "count"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    found = LocalProvider(CHAT, Settings(local=LocalModelSettings(n_ctx=1024)))
    asyncio.run(found.warm())
    yield found
    asyncio.run(found.aclose())


def _ask(provider: LocalProvider, response_format: dict[str, Any]) -> str:
    request = ChatRequest(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Tell me about the sky in one sentence."}],
        params={"max_tokens": 40, "temperature": 0, "response_format": response_format},
    )
    result = asyncio.run(provider.chat(request))
    assert result.body["choices"][0]["finish_reason"] == "stop"
    return str(result.body["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "sky", "schema": SCHEMA}},
        {"type": "json_object", "schema": SCHEMA},  # llama-cpp-python's form of the same request
    ],
)
def test_the_answer_follows_the_schema(provider: LocalProvider, response_format: dict[str, Any]) -> None:
    # unconstrained, the model answers the question in prose; constrained, it can only write the object
    found = json.loads(_ask(provider, response_format))
    assert set(found) == {"colour", "count"}
    assert found["colour"] in ("red", "green", "blue") and found["count"] in (1, 2, 3)


def test_a_schema_llama_cpp_cannot_follow_is_a_bad_request(provider: LocalProvider) -> None:
    with pytest.raises(ProviderError) as info:
        _ask(provider, {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "frobnicate"}}})
    assert info.value.kind == "bad_request" and "JSON schema" in str(info.value)
    with pytest.raises(ProviderError) as info:
        _ask(provider, {"type": "xml"})
    assert info.value.kind == "bad_request"
