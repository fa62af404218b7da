"""Provider for any OpenAI-compatible upstream: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server.

This module is the transport (URLs, auth headers, one pooled aiohttp session per provider instance); the
wire format, which passes bodies through almost untouched, is `openai_wire`.

Deployment settings used:

* `base_url` (default `https://api.openai.com/v1`): the prefix before `/chat/completions` and
  `/embeddings` (`http://localhost:8000/v1` for vLLM or llama.cpp, `http://localhost:11434/v1` for
  Ollama).
* `api_key_env`: sent as `Authorization: Bearer <key>` when set.
* `timeout_s` / `connect_timeout_s`: socket read and connect timeouts.
* `options`:
  - `api_version` switches to **Azure OpenAI**: `base_url` is then the resource endpoint
    (`https://<resource>.openai.azure.com`), the deployment's `model` is the Azure deployment name,
    requests go to `{base_url}/openai/deployments/{model}/chat/completions?api-version=<api_version>`
    (and `/embeddings`), and the key is sent in an `api-key` header instead of `Authorization`.
  - `stream_options` (default true): set false for upstreams that reject the `stream_options` field;
    streams then carry no usage chunk and the gateway estimates usage.
  - `headers`: extra request headers (dict); `max_connections` (default 1000, 0: no limit); `trust_env` (proxies).

Streams ask for `stream_options.include_usage`, so the last chunk usually carries usage (with
`choices: []`) even if the caller did not ask for it; the gateway decides whether to forward it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import ClassVar

from yarl import URL

from pilothouse.config import Deployment, Settings
from pilothouse.gateway.providers import openai_wire as wire
from pilothouse.gateway.providers._http import SessionHolder, post_events, post_json
from pilothouse.gateway.providers.base import ChatRequest, ChatResult, Chunk, EmbeddingResult, Provider, ProviderError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatProvider(Provider):
    """Chat, streaming and embeddings against an OpenAI-compatible HTTP API."""

    name: ClassVar[str] = "openai"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        super().__init__(deployment, settings)
        options = deployment.options
        self._api_version: str | None = options.get("api_version")
        self._stream_options = bool(options.get("stream_options", True))
        base = (deployment.base_url or "").rstrip("/")
        if self._api_version and not base:
            raise ValueError("an Azure OpenAI deployment (options.api_version) needs base_url")
        self._base = base or DEFAULT_BASE_URL
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = deployment.api_key()
        if key:
            if self._api_version:
                headers["api-key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        headers.update({str(k): str(v) for k, v in dict(options.get("headers") or {}).items()})
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._urls: dict[tuple[str, str], URL] = {}
        self._session = SessionHolder(deployment)

    def _url(self, model: str, endpoint: str) -> URL:
        url = self._urls.get((model, endpoint))
        if url is None:
            if self._api_version:
                url = URL(f"{self._base}/openai/deployments/{model}/{endpoint}").with_query(
                    {"api-version": self._api_version}
                )
            else:
                url = URL(f"{self._base}/{endpoint}")
            if len(self._urls) < 1024:
                self._urls[(model, endpoint)] = url
        return url

    async def chat(self, request: ChatRequest) -> ChatResult:
        url = self._url(request.model, "chat/completions")
        data = await post_json(self.name, self._session.get(), url, wire.chat_body(request), self._headers)
        return wire.chat_result(self.name, data)

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        body = wire.stream_body(request, include_usage=self._stream_options)
        url = self._url(request.model, "chat/completions")
        finished = False
        events = post_events(self.name, self._session.get(), url, body, self._stream_headers)
        async with aclosing(events):
            async for _event, data in events:
                if data == wire.DONE:
                    return
                chunk = wire.stream_chunk(self.name, data)
                if chunk is None:
                    continue
                if not finished:
                    finished = wire.finishes(chunk)
                yield chunk
        if not finished:
            raise ProviderError("unavailable", f"{self.name} stream ended before the answer was complete")

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        body = {"model": model, "input": inputs}
        data = await post_json(self.name, self._session.get(), self._url(model, "embeddings"), body, self._headers)
        return wire.embeddings_result(self.name, data)

    async def aclose(self) -> None:
        await self._session.aclose()
