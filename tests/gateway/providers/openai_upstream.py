"""A local OpenAI-compatible upstream for the provider conformance suite: chat (whole and streamed, with
usage), tool calls, embeddings, a bearer key, and the failures a real API gives.

* It checks the key (`Authorization: Bearer <API_KEY>`, else 401), the roles of the messages (else 400),
  and that every `tool` message answers a tool call the conversation made (else 400), as OpenAI does.
* It answers `echo: <last user text>`, one token per word, cut at `max_tokens` (`finish_reason: "length"`).
  When the request offers tools and the last message is not a tool result, it calls the first tool with
  the arguments TOOL_ARGUMENTS instead; after a tool result it answers `result: <its content>`.
* Model ids pick failures: `rate-limited` (429 with Retry-After), `too-long` (400 context_length_exceeded),
  `silent` (sends nothing until the client gives up or the server closes).
* Streams end in a usage-only chunk when `stream_options.include_usage` is asked, then `[DONE]`.

`await start()` returns the `/v1` base URL; `requests` holds every body received.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

API_KEY = "sk-conformance-0123456789"
TOOL_ARGUMENTS = {"location": "Paris"}
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
DIM = 6


def _error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: a non-empty list is required"
    called: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return f"messages[{i}].role: {role!r} is not one of {sorted(ROLES)}"
        if role == "assistant":
            called |= {call.get("id") for call in message.get("tool_calls") or ()}
        if role == "tool" and message.get("tool_call_id") not in called:
            return f"messages[{i}]: tool_call_id {message.get('tool_call_id')!r} answers no tool call"
    return None


class OpenAIUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/messages", self._silent)  # an Anthropic client pointed here times out
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> str:
        await self._server.start_server()
        return str(self._server.make_url("/v1"))

    async def close(self) -> None:
        self._closing.set()
        await self._server.close()

    async def _silent(self, request: web.Request) -> web.Response:
        await self._closing.wait()
        return web.Response(status=503)

    def _refusal(self, request: web.Request, body: Any) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        if (refusal := self._refusal(request, body)) is not None:
            return refusal
        model = body.get("model")
        if model == "silent":
            return await self._silent(request)
        if model == "rate-limited":
            return _error(429, "Rate limit reached for requests", "rate_limit_exceeded", {"Retry-After": "2"})
        if model == "too-long":
            return _error(400, "maximum context length is 128 tokens", "context_length_exceeded")
        if (problem := _problem(body.get("messages"))) is not None:
            return _error(400, problem)
        words, tool_call, finish = self._answer(body)
        prompt = sum(len(_text(m).split()) + 1 for m in body["messages"])
        usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
        head = {"id": "chatcmpl-conformance", "created": 1, "model": model}
        if body.get("stream"):
            return await self._stream(request, body, head, words, tool_call, finish, usage)
        message: dict[str, Any] = {"role": "assistant", "content": None if tool_call else " ".join(words)}
        if tool_call:
            message["tool_calls"] = [tool_call]
        choice = {"index": 0, "message": message, "finish_reason": finish}
        answer = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    def _answer(self, body: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None, str]:
        messages = body["messages"]
        last = messages[-1]
        if body.get("tools") and last["role"] != "tool" and body.get("tool_choice") != "none":
            name = body["tools"][0]["function"]["name"]
            function = {"name": name, "arguments": orjson.dumps(TOOL_ARGUMENTS).decode()}
            return [], {"id": f"call_{len(self.requests)}", "type": "function", "function": function}, "tool_calls"
        if last["role"] == "tool":
            words = ["result:", *_text(last).split()]
        else:
            users = [m for m in messages if m["role"] == "user"]
            words = ["echo:", *(_text(users[-1]).split() if users else [])]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and len(words) > limit:
            return words[:limit], None, "length"
        return words, None, "stop"

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        head: dict[str, Any],
        words: list[str],
        tool_call: dict[str, Any] | None,
        finish: str,
        usage: dict[str, int],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        head = {**head, "object": "chat.completion.chunk"}
        deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
        if tool_call:
            arguments = tool_call["function"]["arguments"]
            first = {**tool_call, "index": 0, "function": {"name": tool_call["function"]["name"], "arguments": ""}}
            deltas.append(({"tool_calls": [first]}, None))
            for piece in (arguments[:5], arguments[5:]):
                deltas.append(({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None))
        deltas += [({"content": word if i == 0 else " " + word}, None) for i, word in enumerate(words)]
        deltas.append(({}, finish))
        for delta, reason in deltas:
            chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + orjson.dumps({**head, "choices": [], "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        if (refusal := self._refusal(request, body)) is not None:
            return refusal
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(text, str) for text in inputs):
            return _error(400, "input must be a string or a list of strings")
        data = []
        for index, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            data.append({"object": "embedding", "index": index, "embedding": [b / 255 for b in digest[:DIM]]})
        data.reverse()  # out of order on purpose: clients must sort by index
        tokens = sum(len(text.split()) for text in inputs)
        answer = {"object": "list", "data": data, "model": body.get("model"), "usage": {"prompt_tokens": tokens}}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
