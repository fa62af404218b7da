"""A small local server that speaks the Anthropic Messages API wire format, for provider tests.

It checks the shape of every request it receives the way the real API does (headers, top-level
system, alternating roles, max_tokens, tool_use / tool_result pairing) and answers with canned text or
tool_use messages, whole or as the documented SSE event sequence. Set `scenario` to pick the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

API_KEY = "sk-ant-test"
VERSION = "2023-06-01"
TEXT_PIECES = ["Hello", "! How can", " I help?"]
TOOL_ARGS = ['{"location": ', '"Paris", "unit"', ': "celsius"}']
USAGE = {
    "input_tokens": 25,
    "cache_read_input_tokens": 5,
    "cache_creation_input_tokens": 0,
    "output_tokens": 1,
}
FINAL_OUTPUT_TOKENS = 12

Scenario = Literal["text", "tool", "overloaded", "rate_limited", "too_long", "stream_error", "truncated", "garbled"]


def _error(status: int, err_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": "error", "error": {"type": err_type, "message": message}}
    return web.json_response(body, status=status, headers=headers, dumps=lambda v: orjson.dumps(v).decode())


def validate(headers: Any, body: Any) -> list[str]:
    """Problems with a request, as the real API would reject it."""
    problems: list[str] = []
    if headers.get("anthropic-version") != VERSION:
        problems.append(f"anthropic-version must be {VERSION}")
    if not isinstance(body, dict):
        return [*problems, "body must be an object"]
    if not isinstance(body.get("model"), str):
        problems.append("model: required string")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens: required positive integer")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        problems.append("system: must be a string or text blocks")
    for key in ("temperature", "top_p"):
        if key in body and not 0 <= body[key] <= 1:
            problems.append(f"{key}: must be within 0..1")
    for tool in body.get("tools") or ():
        if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
            problems.append("tools: each needs name and input_schema")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: required non-empty list"]
    expected = "user"
    pending_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            problems.append(f"messages.{i}.role: {role!r} is not user or assistant (system goes top-level)")
        elif role != expected:
            problems.append(f"messages.{i}: roles must alternate, starting with user")
        expected = "assistant" if role == "user" else "user"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            problems.append(f"messages.{i}.content: required")
            continue
        seen_other = False
        result_ids: set[str] = set()
        for block in blocks:
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                problems.append(f"messages.{i}: text content blocks must be non-empty")
            elif kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    problems.append(f"messages.{i}: tool_use belongs in assistant turns with an object input")
            elif kind == "tool_result":
                if role != "user" or seen_other:
                    problems.append(f"messages.{i}: tool_result blocks must come first in a user turn")
                result_ids.add(block.get("tool_use_id"))
            elif kind not in ("text", "image"):
                problems.append(f"messages.{i}: unknown block type {kind!r}")
            seen_other = seen_other or kind != "tool_result"
        if role == "user" and pending_tool_ids != result_ids:
            problems.append(f"messages.{i}: tool_use ids {sorted(pending_tool_ids)} need matching tool_result")
        pending_tool_ids = {b["id"] for b in blocks if b.get("type") == "tool_use"} if role == "assistant" else set()
    return problems


class AnthropicServer:
    """`await start()` returns the base URL; `requests` holds every request body received."""

    def __init__(self) -> None:
        self.scenario: Scenario = "text"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.problems: list[str] = []
        self.base_url = ""
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> str:
        await self._server.start_server()
        self.base_url = str(self._server.make_url("")).rstrip("/")
        return self.base_url

    async def close(self) -> None:
        await self._server.close()

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": "".join(TEXT_PIECES)}]
        stop = "end_turn"
        if self.scenario == "tool":
            name = body["tools"][0]["name"]
            tool_input = orjson.loads("".join(TOOL_ARGS))
            content = [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": name, "input": tool_input},
            ]
            stop = "tool_use"
        usage = {**USAGE, "output_tokens": FINAL_OUTPUT_TOKENS}
        return {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if request.headers.get("x-api-key") != API_KEY:
            return _error(401, "authentication_error", "invalid x-api-key")
        problems = validate(request.headers, body)
        if problems:
            self.problems.extend(problems)
            return _error(400, "invalid_request_error", "; ".join(problems))
        if self.scenario == "overloaded":
            return _error(529, "overloaded_error", "Overloaded")
        if self.scenario == "rate_limited":
            return _error(
                429,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
                {"retry-after": "7"},
            )
        if self.scenario == "too_long":
            return _error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
        if self.scenario == "garbled":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if body.get("stream"):
            return await self._stream(request, body)
        return web.json_response(self._message(body), dumps=lambda v: orjson.dumps(v).decode())

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(event: str, data: dict[str, Any], *, split: bool = False) -> None:
            raw = b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
            if split:  # exercise the client's line buffering across network reads
                await resp.write(raw[:11])
                await asyncio.sleep(0.01)
                raw = raw[11:]
            await resp.write(raw)

        message = self._message(body)
        start = {**message, "content": [], "stop_reason": None, "usage": USAGE}
        await send("message_start", {"type": "message_start", "message": start})
        await send("ping", {"type": "ping"})
        await resp.write(b": keepalive comment\n\n")
        if self.scenario == "stream_error":
            await send("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            return resp
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                await send(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                pieces = TEXT_PIECES if self.scenario != "tool" else [block["text"]]
                for piece in pieces:
                    delta = {"type": "text_delta", "text": piece}
                    await send(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        split=True,
                    )
                    if self.scenario == "truncated":
                        assert request.transport is not None
                        request.transport.close()
                        return resp
            else:
                start_block = {**block, "input": {}}
                await send(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start_block},
                )
                for partial in ["", *TOOL_ARGS]:
                    delta = {"type": "input_json_delta", "partial_json": partial}
                    await send(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        split=True,
                    )
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": FINAL_OUTPUT_TOKENS},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp
