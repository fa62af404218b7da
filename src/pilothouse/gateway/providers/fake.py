"""A deterministic provider for unit tests of our own logic (never for measuring a model).

It answers `reply` (option) or echoes the last user message, one token per word, honours `max_tokens`,
calls the first offered tool (whole or streamed) when `options.tool_call` is true, and can be made to fail with
`options.fail` set to a ProviderError kind. Embeddings are stable hash-derived unit vectors.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import orjson

from pilothouse.config import Deployment, Settings
from pilothouse.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingResult,
    Provider,
    ProviderError,
    Usage,
)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class FakeProvider(Provider):
    name: ClassVar[str] = "fake"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = True
    counts_tokens: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        super().__init__(deployment, settings)
        self.options = deployment.options
        self.calls: list[ChatRequest] = []

    def count_input_tokens(self, messages: list[dict[str, Any]]) -> int:
        """One token per word plus one per message: the same count its usage reports."""
        return sum(len(_text_of(m).split()) + 1 for m in messages)

    async def _prepare(self, request: ChatRequest) -> tuple[list[str], str]:
        self.calls.append(request)
        delay = float(self.options.get("delay_ms", 0)) / 1000.0
        if delay:
            await asyncio.sleep(delay)
        fail = self.options.get("fail")
        if fail:
            raise ProviderError(fail, f"fake provider told to fail with {fail}", status=500)
        users = [m for m in request.messages if m.get("role") == "user"]
        text = str(self.options.get("reply") or ("echo: " + (_text_of(users[-1]) if users else "")))
        words = text.split()
        limit = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
        finish = "stop"
        if isinstance(limit, int) and len(words) > limit:
            words, finish = words[:limit], "length"
        return words, finish

    def _tool_call(self, request: ChatRequest) -> list[dict[str, Any]] | None:
        tools = request.params.get("tools")
        if not (self.options.get("tool_call") and tools):
            return None
        fn = tools[0]["function"]["name"]
        return [
            {
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": fn, "arguments": orjson.dumps({}).decode()},
            }
        ]

    async def chat(self, request: ChatRequest) -> ChatResult:
        words, finish = await self._prepare(request)
        tool_calls = self._tool_call(request)
        message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else " ".join(words)}
        if tool_calls:
            message["tool_calls"] = tool_calls
            finish = "tool_calls"
        usage = Usage(self.count_input_tokens(request.messages), 0 if tool_calls else len(words))
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }
        return ChatResult(body=body, usage=usage)

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        words, finish = await self._prepare(request)
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        yield chunk({"role": "assistant", "content": ""})
        tool_calls = self._tool_call(request)
        if tool_calls:
            words, finish = [], "tool_calls"
            yield chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(tool_calls)]})
        for i, word in enumerate(words):
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, finish)
        if not self.options.get("omit_stream_usage"):
            n_in = self.count_input_tokens(request.messages)
            yield {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [],
                "usage": {
                    "prompt_tokens": n_in,
                    "completion_tokens": len(words),
                    "total_tokens": n_in + len(words),
                },
            }

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        dim = int(self.options.get("dim", 8))
        vectors = []
        for text in inputs:
            digest = hashlib.sha256(text.encode()).digest()
            raw = [digest[i % len(digest)] - 127.5 for i in range(dim)]
            norm = math.sqrt(sum(v * v for v in raw)) or 1.0
            vectors.append([v / norm for v in raw])
        return EmbeddingResult(vectors=vectors, input_tokens=sum(len(t.split()) for t in inputs))
