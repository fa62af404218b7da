"""A local OpenAI-compatible upstream whose answers the test scripts: text and tool calls, whole or streamed.

The last user message is the script, as JSON: `{"text": "...", "calls": [{"name": ..., "arguments": {...}}]}`
(both optional). The answer has that text (streamed word by word), then those tool calls (streamed as OpenAI
does: the id and name in a first delta, the arguments in two pieces after it), `finish_reason` `tool_calls`
when there are calls, and usage. A message that is not such a script gets the answer "ok". It runs on its own
event loop thread (`start()` / `stop()`), so synchronous tests can drive it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from tests.support.threaded_upstream import ThreadedUpstream


def script(text: str = "", calls: list[tuple[str, dict[str, Any]]] | None = None) -> str:
    """The user message that makes the upstream answer `text` and then `calls` (name, arguments)."""
    return orjson.dumps({"text": text, "calls": [{"name": n, "arguments": a} for n, a in calls or []]}).decode()


def _read_script(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    try:
        found = orjson.loads(users[-1]["content"]) if users else None
    except (orjson.JSONDecodeError, TypeError):
        found = None
    if not isinstance(found, dict):
        return "ok", []
    return str(found.get("text") or ""), list(found.get("calls") or [])


class ToolUpstream(ThreadedUpstream):
    def __init__(self) -> None:
        super().__init__("tool-upstream")
        self.calls = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        text, calls = _read_script(body)
        tool_calls: list[dict[str, Any]] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": orjson.dumps(c.get("arguments", {})).decode()},
            }
            for i, c in enumerate(calls)
        ]
        usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
        finish = "tool_calls" if tool_calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            answer = {
                "id": "chatcmpl-tools",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            return web.json_response(answer)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> None:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            chunk = {
                "id": "chatcmpl-tools",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": choices,
                **extra,
            }
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        await send({"role": "assistant", "content": ""})
        for i, word in enumerate(text.split()):
            await send({"content": word if i == 0 else " " + word})
        for i, call in enumerate(tool_calls):
            fn = call["function"]
            head = {"index": i, "id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}
            await send({"tool_calls": [head]})
            half = len(fn["arguments"]) // 2
            for piece in (fn["arguments"][:half], fn["arguments"][half:]):
                await send({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        await send({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            await send(None, usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
