"""The tool calls in a model's answer: read from a whole `chat.completion`, or gathered from a stream's
`chat.completion.chunk` events while the events that carry them are held back until they can be judged.

The tool gate (gateway/stages/tool_gate.py) uses these: text is relayed as it comes; from the first tool-call
delta on, every event is held, so a caller never receives part of a tool call that is then refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str | dict[str, Any] | None
    """The model's JSON text (or an already parsed object)."""


def offered_tools(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, function name) of each function the request offers the model: `tools[i]`, legacy `functions[i]`."""
    found: list[tuple[str, str]] = []
    for i, tool in enumerate(params.get("tools") or ()):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            found.append((f"tools[{i}]", fn["name"]))
    for i, fn in enumerate(params.get("functions") or ()):
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            found.append((f"functions[{i}]", fn["name"]))
    return found


def calls_in_completion(payload: dict[str, Any]) -> list[ToolCall]:
    """Every tool call of every choice of a whole answer (and the legacy `function_call`)."""
    calls: list[ToolCall] = []
    for choice in payload.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                calls.append(ToolCall(str(fn.get("name") or ""), fn.get("arguments")))
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            calls.append(ToolCall(str(legacy.get("name") or ""), legacy.get("arguments")))
    return calls


def _chunk(event: bytes) -> dict[str, Any] | None:
    if not event.startswith(b"data: "):
        return None
    try:
        chunk = orjson.loads(event[6:])
    except orjson.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None


@dataclass(slots=True)
class StreamHold:
    """Feeds a stream's events through: releases them until the first tool-call delta, holds every event from
    there on, and gathers the tool calls for the verdict at the end of the stream."""

    held: list[bytes] = field(default_factory=list)
    text_released: bool = False
    """Whether an event with text content has been released (the caller may have the status line by then)."""
    _parts: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    """(choice, tool call index) -> [name, arguments] as the deltas spell them."""

    def feed(self, event: bytes) -> bytes | None:
        """The event to release now, or None when it is held."""
        chunk = _chunk(event)
        if chunk is not None:
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict):
                    self._gather(choice)
        if self._parts:
            self.held.append(event)
            return None
        if chunk is not None and any(
            isinstance(c, dict) and isinstance(c.get("delta"), dict) and c["delta"].get("content")
            for c in chunk.get("choices") or ()
        ):
            self.text_released = True
        return event

    def _gather(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return
        index = int(choice.get("index") or 0)
        calls = list(delta.get("tool_calls") or ())
        if isinstance(delta.get("function_call"), dict):  # the legacy single call
            calls.append({"index": -1, "function": delta["function_call"]})
        for call in calls:
            if not isinstance(call, dict):
                continue
            fn = call.get("function")
            if not isinstance(fn, dict):
                fn = {}
            slot = self._parts.setdefault((index, int(call.get("index") or 0)), ["", ""])
            slot[0] += str(fn.get("name") or "")
            slot[1] += str(fn.get("arguments") or "")

    def calls(self) -> list[ToolCall]:
        return [ToolCall(name, arguments) for (_, _), (name, arguments) in sorted(self._parts.items())]
