"""The provider seam: a provider completes chat requests (whole or streamed) and embeds text.

Requests and responses use the OpenAI chat-completions shapes as plain dicts, because that is the
format our gateway speaks on both sides; a provider for another wire format translates in and out.

Every provider subclasses `Provider`. Only `chat` is required; every other method has a default and every
capability a class attribute, so callers call methods directly and read flags instead of probing:

* `chat_stream`: the whole answer from `chat`, replayed as chunks (override it to stream for real);
* `embed`: ProviderError(kind="bad_request"), "does not support embeddings";
* `count_input_tokens`: None, meaning "no tokenizer" (the gateway estimates instead);
* `warm`, `aclose`: nothing to load, nothing to release.

The registry builds one instance per deployment as `cls(deployment, settings)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pilothouse.config import Deployment, Settings

Message = dict[str, Any]
Chunk = dict[str, Any]

ErrorKind = Literal["rate_limit", "timeout", "unavailable", "bad_request", "context_window", "auth", "upstream"]


@dataclass(slots=True)
class Usage:
    """Token counts for one call. `estimated` is True when the provider reported none and we counted."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    estimated: bool = False


@dataclass(slots=True)
class ChatRequest:
    """One chat call as sent to a deployment.

    `model` is the upstream model id of the chosen deployment (not the public name). `params` holds the
    OpenAI sampling and tool fields the caller set (temperature, top_p, max_tokens, stop, seed, tools,
    tool_choice, response_format, n, presence_penalty, frequency_penalty, logit_bias, user, ...).
    """

    model: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ChatResult:
    """A whole (non-streamed) answer: an OpenAI `chat.completion` body and its usage."""

    body: dict[str, Any]
    usage: Usage | None


@dataclass(slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    input_tokens: int


class ProviderError(Exception):
    """An upstream failure, classified so the gateway can map it to 4xx/5xx and decide on retries.

    `status` is the HTTP status the upstream gave (0 when there was no response at all).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


class Provider(ABC):
    """What every provider is. Capabilities are class attributes, checked before a call."""

    name: ClassVar[str]
    """The provider's name in configuration (`provider = "..."`) and in error messages."""
    supports_streaming: ClassVar[bool] = True
    """`chat_stream` works (by default it replays the whole answer of `chat`)."""
    supports_tools: ClassVar[bool] = False
    """Requests with `tools` are passed on and tool calls come back in OpenAI shape."""
    supports_embeddings: ClassVar[bool] = False
    """`embed` works (for deployments of an embedding model)."""
    counts_tokens: ClassVar[bool] = False
    """`count_input_tokens` gives the exact prompt tokens the upstream will bill, not None."""

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        self.deployment = deployment

    @abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResult:
        """Complete a chat request and return the whole answer."""

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream a chat answer as OpenAI `chat.completion.chunk` dicts.

        The last chunk may carry `usage` (OpenAI's `stream_options.include_usage` shape); when none
        does, the gateway estimates the usage and marks it estimated. This default replays `chat`.
        """
        result = await self.chat(request)
        for chunk in completion_as_chunks(result.body):
            yield chunk

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        """Embed texts; raises ProviderError(kind="bad_request") when the provider cannot embed."""
        raise ProviderError("bad_request", f"the {self.name} provider does not support embeddings")

    def count_input_tokens(self, messages: list[Message]) -> int | None:
        """The exact prompt tokens `messages` become for this deployment, or None when there is no tokenizer.

        Synchronous; may raise ProviderError(kind="bad_request") for messages the provider cannot format.
        """
        return None

    async def warm(self) -> None:
        """Load what the first call would otherwise load (the server calls this at start)."""
        return None

    async def aclose(self) -> None:
        """Release pooled connections and loaded models. Safe to call more than once."""
        return None


def completion_as_chunks(body: dict[str, Any]) -> list[Chunk]:
    """A `chat.completion` body as the chunks a stream of it would carry, usage last (when reported)."""
    head = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    chunks: list[Chunk] = []
    for choice in body.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if calls := message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
        finish = choice.get("finish_reason") or "stop"
        chunks.append({**head, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        chunks.append({**head, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    if body.get("usage"):
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    return chunks
