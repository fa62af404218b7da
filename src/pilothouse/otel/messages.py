"""Chat messages between the GenAI conventions' form and ours.

OpenTelemetry (`gen_ai.input.messages`, `gen_ai.output.messages`, gen-ai-input-messages.json) writes a message
as `{"role", "parts": [{"type": "text", "content"}, {"type": "tool_call", "id", "name", "arguments"},
{"type": "tool_call_response", "id", "response"}, ...]}`; our spans keep the OpenAI chat form (`{"role",
"content"}`, `tool_calls`, role `tool`), which the gateway stores and `traces explain` renders. Parts with no
OpenAI equivalent (blobs, files, reasoning, ...) are kept as they are under `parts`, so nothing is lost.
"""

from __future__ import annotations

import json
from typing import Any

_OURS = frozenset({"text", "tool_call", "tool_call_response"})


def _text_of(part: dict[str, Any]) -> str:
    content = part.get("content")
    return content if isinstance(content, str) else json.dumps(content)


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def from_otel(message: Any) -> Any:
    """One OpenTelemetry message in our form (a value that is not a message is returned as it is)."""
    if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
        return message
    role = message.get("role")
    if len(message["parts"]) == 1 and type(part := message["parts"][0]) is dict and part.get("type") == "text":
        one: dict[str, Any] = {"role": role, "content": _text_of(part)}  # the usual message: what the rest makes
        if "name" in message:
            one["name"] = message["name"]
        return one
    parts = [p for p in message["parts"] if isinstance(p, dict)]
    if len(parts) != len(message["parts"]) or any(p.get("type") not in _OURS for p in parts):
        return dict(message)
    ours: dict[str, Any] = {"role": role}
    texts = [_text_of(p) for p in parts if p["type"] == "text"]
    calls = [p for p in parts if p["type"] == "tool_call"]
    answers = [p for p in parts if p["type"] == "tool_call_response"]
    if answers:
        if len(parts) != 1:
            return dict(message)
        response = answers[0].get("response")
        ours = {"role": "tool", "tool_call_id": answers[0].get("id"), "content": _arguments_text(response)}
    else:
        ours["content"] = "".join(texts) if texts or not calls else None
        if calls:
            ours["tool_calls"] = [
                {
                    "id": c.get("id"),
                    "type": "function",
                    "function": {"name": c.get("name"), "arguments": _arguments_text(c.get("arguments"))},
                }
                for c in calls
            ]
    if "name" in message:
        ours["name"] = message["name"]
    return ours


def _parse_arguments(arguments: Any) -> Any:
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                parts.append({"type": "text", "content": item.get("text", "")})
            elif isinstance(item, dict) and item.get("type") == "image_url":
                url = item.get("image_url", {})
                uri = url.get("url") if isinstance(url, dict) else url
                parts.append({"type": "uri", "modality": "image", "uri": uri})
            else:
                parts.append({"type": "generic", "content": item})
        return parts
    return [{"type": "text", "content": json.dumps(content)}]


def to_otel(message: Any, *, finish_reason: str | None = None) -> dict[str, Any]:
    """One of our messages (OpenAI chat form) in the OpenTelemetry form."""
    if not isinstance(message, dict):
        return {"role": "user", "parts": [{"type": "text", "content": str(message)}]}
    if isinstance(message.get("parts"), list):  # kept as OpenTelemetry sent it
        otel = dict(message)
    elif message.get("role") == "tool":
        response = message.get("content")
        otel = {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": response}],
        }
    else:
        parts = _content_parts(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id") if isinstance(call, dict) else None,
                    "name": function.get("name"),
                    "arguments": _parse_arguments(function.get("arguments")),
                }
            )
        otel = {"role": message.get("role", "user"), "parts": parts}
    if finish_reason is not None:
        otel["finish_reason"] = finish_reason
    return otel
