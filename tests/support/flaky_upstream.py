"""A local OpenAI-compatible upstream that fails on demand, for routing tests.

It answers `POST /v1/chat/completions` with valid OpenAI bodies (whole or as an SSE stream) that carry
usage, unless a fault is queued (`fail_next`) or set for every call (`always`). The answer is
`Hello from <name>` in COMPLETION_TOKENS pieces (one token each); like a real upstream it honours
`max_tokens` / `max_completion_tokens`: never more completion tokens than asked (the answer is cut, with
`finish_reason: "length"`), so the gateway's estimates are tested against what an upstream would bill.

* `"500"`, `"503"`: that HTTP status with an OpenAI error body;
* `"429"`: 429 with `Retry-After: <retry_after>` (seconds);
* `"context"`: 400 `context_length_exceeded`;
* `"hang"`: send nothing for `hang_s` (past the gateway's read timeout);
* `"reset"`: send the status line and the start of the body, then close the connection;
* `"trickle"`: send the status line, then the answer one byte per `trickle_s` (no read gap is ever long);
* `"keepalive"`: send the status line, then only SSE keep-alive comments (whitespace for a whole answer).

For the faults that hold a connection (hang, trickle, keepalive), `hung_up_after` lists how long after the
request arrived the gateway closed it (a cancelled call), so tests can see an upstream call stop.

It runs on its own event loop thread (`start()` / `stop()`), so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

PROMPT_TOKENS = 12
COMPLETION_TOKENS = 5
FAULTS = frozenset({"500", "503", "429", "context", "hang", "reset", "trickle", "keepalive"})


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json")


def _error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error"}}
    if code:
        body["error"]["code"] = code
    return _json(body, status, headers)


class FlakyUpstream:
    def __init__(self, name: str, *, retry_after: float = 1.0, hang_s: float = 30.0) -> None:
        self.name = name
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.always: str | None = None
        self.calls = 0
        self.faults_served: list[str] = []
        self.hung_up_after: list[float] = []
        self.trickle_s = 1.0
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"flaky-{name}", daemon=True)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._server = TestServer(app, host="127.0.0.1")
        self.base_url = ""

    # -- control (from the test's thread) --------------------------------------------------------------
    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start_server(), self._loop).result(timeout=30)
        self.base_url = str(self._server.make_url("/v1")).rstrip("/")
        return self.base_url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def fail_next(self, *faults: str) -> None:
        assert set(faults) <= FAULTS, faults
        with self._lock:
            self._queue.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.always = None

    def wait_calls(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.calls < n and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- serving ----------------------------------------------------------------------------------------
    def _fault(self) -> str | None:
        with self._lock:
            self.calls += 1
            fault = self._queue.popleft() if self._queue else self.always
            if fault:
                self.faults_served.append(fault)
            return fault

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fault = self._fault()
        if fault == "500":
            return _error(500, f"{self.name}: internal error")
        if fault == "503":
            return _error(503, f"{self.name}: overloaded, try later")
        if fault == "429":
            return _error(429, f"{self.name}: rate limited", headers={"Retry-After": f"{self.retry_after:g}"})
        if fault == "context":
            return _error(400, f"{self.name}: maximum context length exceeded", code="context_length_exceeded")
        if fault == "hang" and await self._hung_up(request, self.hang_s, time.monotonic()):
            return web.Response(status=499)  # nobody is listening any more
        if fault in ("trickle", "keepalive"):
            return await self._hold(request, body, fault)
        if fault == "reset":
            return await self._reset(request, stream=bool(body.get("stream")))
        if body.get("stream"):
            return await self._stream(request, body)
        return _json(self._completion(body))

    def _pieces(self, body: dict[str, Any]) -> tuple[list[str], str]:
        """The answer's tokens, cut at the request's max_tokens, and the finish reason."""
        pieces = ["Hel", "lo", " from", " ", self.name]
        assert len(pieces) == COMPLETION_TOKENS
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            return pieces[:limit], "length"
        return pieces, "stop"

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        pieces, finish = self._pieces(body)
        return {
            "id": f"chatcmpl-{self.name}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.name),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(pieces)}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": len(pieces),
                "total_tokens": PROMPT_TOKENS + len(pieces),
            },
        }

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        base = {"id": f"chatcmpl-{self.name}", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        pieces, finish_reason = self._pieces(body)
        deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
        deltas += [({"content": piece}, None) for piece in pieces]
        deltas.append(({}, finish_reason))
        for delta, finish in deltas:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            n = len(pieces)
            usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}
            await resp.write(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _hung_up(self, request: web.Request, seconds: float, arrived: float) -> bool:
        """Wait `seconds`, or until the gateway closes the connection (then True, and it is recorded; the server
        may also cancel this handler when the connection is lost)."""
        until = time.monotonic() + seconds
        try:
            while time.monotonic() < until:
                transport = request.transport
                if transport is None or transport.is_closing():
                    self.hung_up_after.append(time.monotonic() - arrived)
                    return True
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            self.hung_up_after.append(time.monotonic() - arrived)
            raise
        return False

    async def _hold(self, request: web.Request, body: dict[str, Any], fault: str) -> web.StreamResponse:
        """`trickle`: the answer a byte at a time; `keepalive`: only keep-alives, for up to `hang_s`."""
        arrived = time.monotonic()
        stream = bool(body.get("stream"))
        if fault == "trickle":
            payload = orjson.dumps(self._completion(body))
            pieces = [b"data: " + payload + b"\n\n" if stream else payload]
            pieces = [piece[i : i + 1] for piece in pieces for i in range(len(piece))]
            every = self.trickle_s
        else:
            pieces = [b": keep-alive\n\n" if stream else b" "] * int(self.hang_s / 0.25)
            every = 0.25
        headers = {"Content-Type": "text/event-stream" if stream else "application/json"}
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        for piece in pieces:
            if await self._hung_up(request, every, arrived):
                return resp
            try:
                await resp.write(piece)
            except ConnectionError:
                self.hung_up_after.append(time.monotonic() - arrived)
                return resp
        return resp

    async def _reset(self, request: web.Request, *, stream: bool) -> web.StreamResponse:
        """Status line and headers out, then the connection drops mid-response."""
        if stream:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        else:
            resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "4096"})
        await resp.prepare(request)
        await resp.write(b"data: {" if stream else b'{"id": "chatcmpl-')
        await asyncio.sleep(0.05)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return resp
