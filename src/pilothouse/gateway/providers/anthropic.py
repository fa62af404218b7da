"""Provider for the Anthropic Messages API: the transport (URL, headers, one pooled aiohttp session); the
translation to and from OpenAI chat completions is `anthropic_wire`.

Deployment: `base_url` (default `https://api.anthropic.com`), `api_key_env` (sent as `x-api-key`),
`options`: `max_tokens` (the default when a request sets none; 1024), `anthropic_version` (default
2023-06-01), `anthropic_beta`, `headers`, `max_connections`, `trust_env`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import ClassVar

from yarl import URL

from pilothouse.config import Deployment, Settings
from pilothouse.gateway.providers import anthropic_wire as wire
from pilothouse.gateway.providers._http import SessionHolder, post_events, post_json
from pilothouse.gateway.providers.base import ChatRequest, ChatResult, Chunk, Provider

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    """Chat and streaming (with tools) against the Anthropic Messages API."""

    name: ClassVar[str] = "anthropic"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        super().__init__(deployment, settings)
        options = deployment.options
        self._max_tokens = int(options.get("max_tokens", wire.DEFAULT_MAX_TOKENS))
        self._url = URL(f"{(deployment.base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/messages")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "anthropic-version": str(options.get("anthropic_version", ANTHROPIC_VERSION)),
        }
        if key := deployment.api_key():
            headers["x-api-key"] = key
        if beta := options.get("anthropic_beta"):
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
        headers.update({str(k): str(v) for k, v in dict(options.get("headers") or {}).items()})
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._session = SessionHolder(deployment)

    async def chat(self, request: ChatRequest) -> ChatResult:
        body = wire.translate_request(request, self._max_tokens)
        message = await post_json(self.name, self._session.get(), self._url, body, self._headers)
        return wire.chat_result(message)

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        body = wire.translate_request(request, self._max_tokens)
        body["stream"] = True
        events = post_events(self.name, self._session.get(), self._url, body, self._stream_headers)
        async with aclosing(events), aclosing(wire.translate_stream(events, request.model)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def aclose(self) -> None:
        await self._session.aclose()
