"""A cached answer: what the provider returned, with the cost of the call that produced it.

One entry serves both kinds of request under one key (`stream` is not in the key): an answer recorded from
a stream keeps its chunks and is replayed chunk by chunk to a streaming caller, or assembled into a
`chat.completion` for a non-streaming one; an answer recorded from a plain call is replayed as-is, or as a
short stream (role and content in one chunk, then the finish chunk) to a streaming caller.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from pilothouse.gateway.streaming import StreamAccumulator, sse

ENTRY_VERSION = 1


@dataclass(slots=True)
class CachedAnswer:
    model: str
    usage: dict[str, Any]
    cost_usd: Decimal | None  # what the original call cost: what each hit saves
    trace_id: str
    created_at: float = field(default_factory=time.time)
    body: dict[str, Any] | None = None  # a `chat.completion`, when recorded from a plain call
    chunks: list[dict[str, Any]] | None = None  # `chat.completion.chunk`s with choices, when recorded from a stream

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "v": ENTRY_VERSION,
                "model": self.model,
                "usage": self.usage,
                "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
                "trace_id": self.trace_id,
                "created_at": self.created_at,
                "body": self.body,
                "chunks": self.chunks,
            }
        )

    @classmethod
    def loads(cls, raw: bytes) -> CachedAnswer | None:
        """The entry, or None when it is unreadable or of another version (treated as a miss)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or data.get("v") != ENTRY_VERSION:
            return None
        cost = data.get("cost_usd")
        return cls(
            model=data["model"],
            usage=data.get("usage") or {},
            cost_usd=None if cost is None else Decimal(cost),
            trace_id=data.get("trace_id") or "",
            created_at=float(data.get("created_at") or 0.0),
            body=data.get("body"),
            chunks=data.get("chunks"),
        )

    # -- replay ---------------------------------------------------------------------------------
    def completion(self) -> dict[str, Any]:
        """The answer as a `chat.completion` body."""
        if self.body is not None:
            return self.body
        acc = StreamAccumulator()
        for chunk in self.chunks or []:
            acc.add(chunk)
        return {
            "id": acc.response_id or "chatcmpl-cached",
            "object": "chat.completion",
            "created": _created(self.chunks),
            "model": acc.response_model or self.model,
            "choices": [{"index": 0, "message": acc.message(), "finish_reason": acc.finish_reason or "stop"}],
            "usage": self.usage,
        }

    def stream_chunks(self) -> list[dict[str, Any]]:
        """The answer as `chat.completion.chunk`s (without the usage chunk)."""
        if self.chunks is not None:
            return self.chunks
        body = self.body or {}
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        base = {
            "id": body.get("id") or "chatcmpl-cached",
            "object": "chat.completion.chunk",
            "created": body.get("created") or int(self.created_at),
            "model": body.get("model") or self.model,
        }
        return [
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"}]},
        ]

    async def events(self, include_usage: bool) -> AsyncGenerator[bytes, None]:
        """SSE events replaying the answer (the server adds `[DONE]`)."""
        chunks = self.stream_chunks()
        for chunk in chunks:
            yield sse(chunk)
        if include_usage:
            last = chunks[-1] if chunks else {}
            yield sse(
                {
                    "id": last.get("id", "chatcmpl-cached"),
                    "object": "chat.completion.chunk",
                    "created": last.get("created", int(self.created_at)),
                    "model": last.get("model", self.model),
                    "choices": [],
                    "usage": self.usage,
                }
            )

    def message(self) -> dict[str, Any]:
        choice = (self.completion().get("choices") or [{}])[0]
        message: dict[str, Any] = choice.get("message") or {}
        return message


def _created(chunks: list[dict[str, Any]] | None) -> int:
    for chunk in chunks or []:
        if isinstance(chunk.get("created"), int):
            return int(chunk["created"])
    return int(time.time())


def chunks_from_events(events: list[bytes]) -> list[dict[str, Any]] | None:
    """The chunks of recorded SSE events (usage-only chunks left out), or None when one is not a chunk
    (an error event: such an answer is not cached)."""
    chunks = []
    for event in events:
        if not event.startswith(b"data: "):
            return None
        payload = orjson.loads(event[6:])
        if not isinstance(payload, dict) or "error" in payload:
            return None
        if payload.get("choices"):
            chunks.append(payload)
    return chunks
