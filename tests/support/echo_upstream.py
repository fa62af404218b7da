"""A local upstream that fails by quoting the request's credentials back, as careless proxies and APIs do.

It serves both wire formats: `POST /v1/chat/completions` (OpenAI) and `POST /v1/messages` (Anthropic). Every
call fails, in the way `mode` says, with an error message that carries the key it was sent ("Incorrect API
key provided: <key>") and every request header (`Authorization: Bearer ...`, `x-api-key: ...`):

* `"400"`, `"500"`: that HTTP status with the format's error body;
* `"stream"`: a streamed answer whose first chunk is fine and whose next event is an error, for the
  failure after the status line has gone out.

It runs on its own event loop thread (`start()` / `stop()`), so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Literal

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

Mode = Literal["400", "500", "stream"]


def _quote(request: web.Request) -> str:
    """The upstream's careless error text: the key it got, then all the request's headers."""
    auth = request.headers.get("Authorization", "")
    key = auth.partition(" ")[2] or request.headers.get("x-api-key") or request.headers.get("api-key") or "none"
    headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    return f"Incorrect API key provided: {key}. Request headers were {headers}"


class EchoUpstream:
    def __init__(self) -> None:
        self.mode: Mode = "400"
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="echo-upstream", daemon=True)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        self._server = TestServer(app, host="127.0.0.1")
        self.url = ""

    def start(self) -> str:
        """Start serving; returns the root URL (OpenAI base_url is `url + "/v1"`, Anthropic's is `url`)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start_server(), self._loop).result(timeout=30)
        self.url = str(self._server.make_url("/")).rstrip("/")
        return self.url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = orjson.loads(await request.read())
        if self.mode == "stream" and body.get("stream"):
            first = {
                "id": "chatcmpl-echo",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
            }
            error = {"error": {"message": _quote(request), "type": "server_error"}}
            return await self._sse(request, [(None, first), (None, error)])
        status = 500 if self.mode == "500" else 400
        kind = "server_error" if status == 500 else "invalid_request_error"
        payload = {"error": {"message": _quote(request), "type": kind, "param": None, "code": None}}
        return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = orjson.loads(await request.read())
        if self.mode == "stream" and body.get("stream"):
            start = {
                "type": "message_start",
                "message": {
                    "id": "msg_echo",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model"),
                    "content": [],
                    "usage": {"input_tokens": 3, "output_tokens": 1},
                },
            }
            block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
            error = {"type": "error", "error": {"type": "api_error", "message": _quote(request)}}
            events = [("message_start", start), ("content_block_start", block), ("content_block_delta", delta)]
            return await self._sse(request, [*events, ("error", error)])
        status = 500 if self.mode == "500" else 400
        kind = "api_error" if status == 500 else "invalid_request_error"
        payload = {"type": "error", "error": {"type": kind, "message": _quote(request)}}
        return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")

    async def _sse(self, request: web.Request, events: list[tuple[str | None, object]]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        for name, data in events:
            prefix = f"event: {name}\n".encode() if name else b""
            await resp.write(prefix + b"data: " + orjson.dumps(data) + b"\n\n")
        await resp.write_eof()
        return resp
