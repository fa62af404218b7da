"""Provider for any OpenAI-compatible upstream: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server.

Requests pass through almost untouched: the body is the caller's params plus `model` and `messages`,
so tools, tool_choice, response_format and friends reach the upstream as sent. Responses come back as
the upstream's own JSON. One pooled aiohttp session per provider instance; orjson on both sides.

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
from typing import Any, ClassVar

import aiohttp
import orjson
from yarl import URL

from pilothouse.config import Deployment, Settings
from pilothouse.gateway.providers._http import (
    SessionHolder,
    error_from_event,
    error_from_exception,
    iter_sse,
    loads_object,
    read_error,
)
from pilothouse.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingResult,
    ProviderError,
    Usage,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_DONE = b"[DONE]"


def usage_from_openai(usage: Any) -> Usage | None:
    """`Usage` from an OpenAI `usage` object (prompt/completion tokens, cached prompt tokens)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_input_tokens=int(cached or 0),
    )


class OpenAICompatProvider:
    """Chat, streaming and embeddings against an OpenAI-compatible HTTP API."""

    name: ClassVar[str] = "openai"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        self.deployment = deployment
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

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body = dict(request.params)
        body["model"] = request.model
        body["messages"] = request.messages
        return body

    async def _post(self, url: URL, body: dict[str, Any]) -> dict[str, Any]:
        session = self._session.get()
        try:
            async with session.post(url, data=orjson.dumps(body), headers=self._headers) as resp:
                if resp.status >= 400:
                    raise await read_error(self.name, resp)
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise error_from_exception(self.name, exc) from exc
        return loads_object(self.name, raw, status)

    async def chat(self, request: ChatRequest) -> ChatResult:
        body = self._body(request)
        body.pop("stream", None)
        body.pop("stream_options", None)
        data = await self._post(self._url(request.model, "chat/completions"), body)
        if "error" in data and "choices" not in data:
            raise error_from_event(self.name, data["error"])
        return ChatResult(body=data, usage=usage_from_openai(data.get("usage")))

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        body = self._body(request)
        body["stream"] = True
        if self._stream_options:
            options = body.get("stream_options")
            body["stream_options"] = {**options, "include_usage": True} if options else {"include_usage": True}
        else:
            body.pop("stream_options", None)
        session = self._session.get()
        url = self._url(request.model, "chat/completions")
        finished = False
        try:
            async with session.post(url, data=orjson.dumps(body), headers=self._stream_headers) as resp:
                if resp.status >= 400:
                    raise await read_error(self.name, resp)
                async for _event, data in iter_sse(resp.content):
                    if data == _DONE:
                        return
                    chunk = orjson.loads(data)
                    if not isinstance(chunk, dict):
                        continue
                    if "error" in chunk and "choices" not in chunk:
                        raise error_from_event(self.name, chunk["error"])
                    if not finished:
                        for choice in chunk.get("choices") or ():
                            if choice.get("finish_reason"):
                                finished = True
                    yield chunk
        except orjson.JSONDecodeError as exc:
            raise ProviderError("upstream", f"{self.name} stream sent invalid JSON: {exc}", status=200) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise error_from_exception(self.name, exc, streaming=True) from exc
        if not finished:
            raise ProviderError("unavailable", f"{self.name} stream ended before the answer was complete")

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        data = await self._post(self._url(model, "embeddings"), {"model": model, "input": inputs})
        items = data.get("data")
        if not isinstance(items, list):
            raise ProviderError("upstream", f"{self.name} embeddings response has no data list", status=200)
        items = sorted(items, key=lambda item: int(item.get("index", 0)))
        vectors = [item["embedding"] for item in items]
        usage = data.get("usage")
        tokens = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
        return EmbeddingResult(vectors=vectors, input_tokens=tokens)

    async def aclose(self) -> None:
        await self._session.aclose()
