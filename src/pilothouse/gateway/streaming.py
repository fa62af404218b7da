"""Relaying a provider's chunk stream to the caller as SSE while accumulating what the span records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pilothouse.gateway.tokens import message_text

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class StreamAccumulator:
    """Rebuilds the assistant message, finish reason and usage from `chat.completion.chunk` dicts."""

    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    usage: dict[str, Any] | None = None
    chunks: int = 0
    pieces: int = 0
    """Deltas that carried output (text or a tool call's name or arguments): about one token each."""

    def add(self, chunk: dict[str, Any]) -> bool:
        """Record a chunk; returns True when it carries content (for time to first token)."""
        self.chunks += 1
        self.response_id = self.response_id or chunk.get("id")
        self.response_model = self.response_model or chunk.get("model")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        has_content = False
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
                self.pieces += 1
                has_content = True
            for call in delta.get("tool_calls") or []:
                has_content = True
                self.pieces += 1
                slot = self.tool_calls.setdefault(
                    int(call.get("index", 0)),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return has_content

    def output_text(self) -> str:
        """The text the output tokens were spent on: the content and the tool calls' names and arguments."""
        return message_text(self.message())

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message
