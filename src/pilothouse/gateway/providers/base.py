"""The provider seam: a provider completes chat requests (whole or streamed) and embeds text.

Requests and responses use the OpenAI chat-completions shapes as plain dicts, because that is the
format our gateway speaks on both sides; a provider for another wire format translates in and out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

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


@runtime_checkable
class Provider(Protocol):
    """What every provider implements. Capabilities are class attributes, checked before a call."""

    name: ClassVar[str]
    supports_streaming: ClassVar[bool]
    supports_tools: ClassVar[bool]
    supports_embeddings: ClassVar[bool]

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Complete a chat request and return the whole answer."""
        ...

    def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream a chat answer as OpenAI `chat.completion.chunk` dicts.

        The last chunk may carry `usage` (OpenAI's `stream_options.include_usage` shape); when none
        does, the gateway estimates the usage and marks it estimated.
        """
        ...

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        """Embed texts; raises ProviderError(kind="bad_request") when the provider cannot embed."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections and loaded models."""
        ...
