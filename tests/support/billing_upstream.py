"""A local OpenAI-compatible upstream that records what it would bill, so a test can compare the spend a
gateway recorded with what the provider charged.

`POST /v1/chat/completions`; the deployment's model id picks the behaviour:

* `normal`: answers at once, with usage (a stream ends in a usage chunk when `include_usage` is asked);
* `nousage`: the same, but never reports usage (no `usage` field, no usage chunk);
* `slow`: waits `slow_s` and then answers like `normal` (so calls are in flight while a test acts);
* `hang`: sends nothing for `hang_s`;
* `trickle`: a whole answer sent slowly: a non-streamed body one byte every `trickle_s` after the headers
  (never a gap long enough for a read timeout), a stream one SSE event every `trickle_s`.

What it bills (`Call.prompt_tokens`, `Call.completion_tokens`, `Call.usd`):

* prompt tokens: for every message `ceil(UTF-8 bytes of its text / 2) + PER_MESSAGE`, plus `PER_REQUEST`.
  A deliberately high count ("hi" is 12 tokens, Chinese 1.5 a character, digits 1 per 2): real tokenizers
  count no more relative to a gateway's estimate, so an estimate too low to be a bound shows;
* completion tokens: `min(max_tokens, length)`; each is the piece `PIECE` (6 characters, so a 4-characters
  a token estimate over-counts the text and only a cap at `max_tokens` meters it right);
* a non-streamed call is billed in full when it is received: the provider generates the answer whether or
  not the caller is still there to read it (OpenAI, for one, does). A stream is billed its prompt when
  received and each content piece when it is written: a provider stops generating when the stream's reader
  goes away.

Usage it reports, when it does, is exactly what it bills. `calls()` lists every call with its timing and
whether the caller closed the connection before the answer was complete (`client_closed`); `billed_usd()`
and `billed_tokens()` total them, optionally for one `user` (the calls whose `user` field is it, or starts
with it and a dash: `u-1` covers `u-1-a` and `u-1-b`, so a test can tell its calls apart). It runs on its own
event loop thread (`start()` / `stop()`), so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

PER_MESSAGE = 8
PER_REQUEST = 3
PIECE = " lorem"
MODES = frozenset({"normal", "nousage", "slow", "hang", "trickle"})


def message_chars(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def prompt_tokens(messages: list[Any]) -> int:
    """What this upstream bills for a request's messages (see the module docstring)."""
    return PER_REQUEST + sum(math.ceil(len(message_chars(m).encode()) / 2) + PER_MESSAGE for m in messages)


@dataclass
class Call:
    """One chat completion request as the upstream saw and billed it."""

    mode: str
    stream: bool
    user: str | None
    prompt_tokens: int
    planned_tokens: int
    """Completion tokens of the whole answer (min(max_tokens, length))."""
    price_in: Decimal
    price_out: Decimal
    received_at: float
    completion_tokens: int = 0
    """Completion tokens billed so far."""
    ended_at: float | None = None
    finished: bool = False
    """The whole answer was written."""
    client_closed: bool = False
    """The caller closed the connection before the answer was complete."""

    @property
    def usd(self) -> Decimal:
        return (self.prompt_tokens * self.price_in + self.completion_tokens * self.price_out) / Decimal(10**6)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


class BillingUpstream:
    def __init__(
        self,
        *,
        price_in_per_mtok: Decimal,
        price_out_per_mtok: Decimal,
        length: int = 16,
        slow_s: float = 2.0,
        hang_s: float = 60.0,
        trickle_s: float = 1.0,
    ) -> None:
        self.price_in = price_in_per_mtok
        self.price_out = price_out_per_mtok
        self.length = length
        self.slow_s = slow_s
        self.hang_s = hang_s
        self.trickle_s = trickle_s
        self._calls: list[Call] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="billing-upstream", daemon=True)
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

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def calls(self, user: str | None = None) -> list[Call]:
        with self._lock:
            found = list(self._calls)
        if user is None:
            return found
        return [c for c in found if c.user is not None and (c.user == user or c.user.startswith(user + "-"))]

    def billed_usd(self, user: str | None = None) -> Decimal:
        return sum((c.usd for c in self.calls(user)), Decimal(0))

    def billed_tokens(self, user: str | None = None) -> tuple[int, int]:
        """(prompt, completion) tokens billed."""
        calls = self.calls(user)
        return sum(c.prompt_tokens for c in calls), sum(c.completion_tokens for c in calls)

    def wait_received(self, n: int, user: str | None = None, timeout: float = 20.0) -> list[Call]:
        """Wait until at least `n` calls (of `user`) have arrived; returns them (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while len(found := self.calls(user)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"the upstream received {len(found)} calls, expected {n}, within {timeout}s")
            time.sleep(0.02)
        return found

    def wait_ended(self, user: str | None = None, timeout: float = 20.0) -> list[Call]:
        """Wait until every call (of `user`) has ended, answered or closed; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(user)
            still_open = sum(c.ended_at is None for c in found)
            if not still_open:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{still_open} upstream calls still open after {timeout}s")
            time.sleep(0.02)

    # -- serving ----------------------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        mode = str(body.get("model"))
        if mode not in MODES:
            return _json({"error": {"message": f"unknown model {mode!r}", "type": "invalid_request_error"}}, 404)
        messages = body.get("messages") or []
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        planned = min(int(cap), self.length) if isinstance(cap, int) else self.length
        stream = bool(body.get("stream"))
        call = Call(
            mode=mode,
            stream=stream,
            user=body.get("user"),
            prompt_tokens=prompt_tokens(messages),
            planned_tokens=planned,
            price_in=self.price_in,
            price_out=self.price_out,
            received_at=time.monotonic(),
            completion_tokens=0 if stream else planned,  # a non-streamed answer is billed in full at once
        )
        with self._lock:
            self._calls.append(call)
        try:
            if mode == "hang":
                await asyncio.sleep(self.hang_s)
            elif mode == "slow":
                await asyncio.sleep(self.slow_s)
            if stream:
                resp = await self._stream(request, body, call)
            elif mode == "trickle":
                resp = await self._trickle(request, body, call)
            else:
                resp = _json(self._completion(body, call))
                await resp.prepare(request)
                await resp.write_eof()
                call.finished = True
            return resp
        except (asyncio.CancelledError, ConnectionError):  # the caller closed the connection
            call.client_closed = not call.finished
            raise
        finally:
            call.ended_at = time.monotonic()

    def _completion(self, body: dict[str, Any], call: Call) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": f"chatcmpl-bill{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.mode,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": PIECE * call.planned_tokens},
                    "finish_reason": "length" if call.planned_tokens < self.length else "stop",
                }
            ],
        }
        if call.mode != "nousage":
            payload["usage"] = self._usage(call.prompt_tokens, call.planned_tokens)
        return payload

    @staticmethod
    def _usage(prompt: int, completion: int) -> dict[str, int]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def _trickle(self, request: web.Request, body: dict[str, Any], call: Call) -> web.StreamResponse:
        data = orjson.dumps(self._completion(body, call))
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(data))})
        await resp.prepare(request)
        for i in range(len(data)):
            if i:
                await asyncio.sleep(self.trickle_s)
            await resp.write(data[i : i + 1])
        call.finished = True
        await resp.write_eof()
        return resp

    async def _stream(self, request: web.Request, body: dict[str, Any], call: Call) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        base = {"id": f"chatcmpl-bill{next(self._ids)}", "object": "chat.completion.chunk", "created": 0}
        base["model"] = call.mode
        pause = self.trickle_s if call.mode == "trickle" else 0.0

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            await resp.write(b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n")
            if pause:
                await asyncio.sleep(pause)

        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for _ in range(call.planned_tokens):
            await send([{"index": 0, "delta": {"content": PIECE}, "finish_reason": None}])
            call.completion_tokens += 1  # generated and sent: billed
        finish = "length" if call.planned_tokens < self.length else "stop"
        await send([{"index": 0, "delta": {}, "finish_reason": finish}])
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        if include and call.mode != "nousage":
            await send([], usage=self._usage(call.prompt_tokens, call.completion_tokens))
        await resp.write(b"data: [DONE]\n\n")
        call.finished = True
        await resp.write_eof()
        return resp
