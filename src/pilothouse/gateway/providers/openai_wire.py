"""The OpenAI chat-completions and embeddings wire format, upstream side: request bodies out, answers in.

The gateway speaks this format too, so bodies pass through almost untouched: a request is the caller's
params plus `model` and `messages` (tools, tool_choice, response_format and friends reach the upstream as
sent), and an answer is the upstream's own JSON. What is added: streams ask for
`stream_options.include_usage` (unless the deployment turned that off), error bodies and error events
become ProviderErrors, and a stream must end with a finish reason to count as complete.
"""

from __future__ import annotations

from typing import Any

import orjson

from pilothouse.gateway.providers.base import ChatRequest, ChatResult, Chunk, EmbeddingResult, ProviderError, Usage
from pilothouse.gateway.providers.errors import error_from_event

DONE = b"[DONE]"
"""The data of the event that ends a stream."""


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


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """The body of a whole (non-streamed) chat call."""
    body = dict(request.params)
    body.pop("stream", None)
    body.pop("stream_options", None)
    body["model"] = request.model
    body["messages"] = request.messages
    return body


def stream_body(request: ChatRequest, *, include_usage: bool) -> dict[str, Any]:
    """The body of a streamed chat call; `include_usage` adds `stream_options.include_usage`, else the
    caller's `stream_options` are dropped (for upstreams that reject the field)."""
    body = dict(request.params)
    body["model"] = request.model
    body["messages"] = request.messages
    body["stream"] = True
    if include_usage:
        options = body.get("stream_options")
        body["stream_options"] = {**options, "include_usage": True} if options else {"include_usage": True}
    else:
        body.pop("stream_options", None)
    return body


def chat_result(provider: str, data: dict[str, Any]) -> ChatResult:
    """A whole answer, or the ProviderError an error body stands for."""
    if "error" in data and "choices" not in data:
        raise error_from_event(provider, data["error"])
    return ChatResult(body=data, usage=usage_from_openai(data.get("usage")))


def stream_chunk(provider: str, data: bytes) -> Chunk | None:
    """The chunk one event's data carries (None for data that is not an object); raises on an error event
    or invalid JSON."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProviderError("upstream", f"{provider} stream sent invalid JSON: {exc}", status=200) from exc
    if not isinstance(chunk, dict):
        return None
    if "error" in chunk and "choices" not in chunk:
        raise error_from_event(provider, chunk["error"])
    return chunk


def finishes(chunk: Chunk) -> bool:
    """True when a chunk carries a choice's finish reason."""
    return any(choice.get("finish_reason") for choice in chunk.get("choices") or ())


def embeddings_result(provider: str, data: dict[str, Any]) -> EmbeddingResult:
    """Vectors in input order, and the prompt tokens reported (0 when none)."""
    items = data.get("data")
    if not isinstance(items, list):
        raise ProviderError("upstream", f"{provider} embeddings response has no data list", status=200)
    items = sorted(items, key=lambda item: int(item.get("index", 0)))
    usage = data.get("usage")
    tokens = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
    return EmbeddingResult(vectors=[item["embedding"] for item in items], input_tokens=tokens)
