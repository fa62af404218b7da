"""A fast fake OpenAI-compatible upstream for the gateway overhead benchmark.

It answers `POST /v1/chat/completions` after a fixed delay (default 20 ms) with a small valid
`chat.completion` body including `usage`; with `"stream": true` it sends a minimal SSE stream (a role
chunk, a content chunk, a finish chunk, a usage chunk when `stream_options.include_usage` is set) that
ends in `data: [DONE]`. `GET /v1/models` and `GET /health` answer at once. It does not check keys.
`GET /stats` answers `{"chat_completions": N}`: how many chat completion requests it has received, so a
benchmark can tell how many requests a gateway answered from its cache.

It is a raw asyncio HTTP/1.1 server (keep-alive, Content-Length or chunked request bodies, uvloop when
installed) in one process and one thread, so that it costs far less CPU than the gateways it sits
behind: the benchmark must measure the gateway, not this server.

    python bench/upstream.py --port 8799 --delay-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

try:  # orjson is a Pilothouse dependency; the stdlib is the fallback.
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value)

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - depends on the interpreter

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def _loads(data: bytes) -> Any:
        return json.loads(data)


REPLY_PIECES = ("Hello", " from", " the", " bench", "mark", " upstream", ".")
REPLY_TEXT = "".join(REPLY_PIECES)
REPLY_TOKENS = len(REPLY_PIECES)
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

_ids = itertools.count(1)
_chat_completions = 0  # chat completion requests received (GET /stats)

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Too Large"}


def _response(status: int, body: bytes, content_type: bytes = b"application/json", keep_alive: bool = True) -> bytes:
    reason = _REASONS.get(status, "Unknown").encode()
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"Content-Type: " + content_type + b"\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
            body,
        )
    )


def _error(status: int, message: str, keep_alive: bool = True) -> bytes:
    body = _dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}})
    return _response(status, body, keep_alive=keep_alive)


def _prompt_tokens(request: dict[str, Any]) -> int:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return 1
    chars = sum(len(m.get("content") or "") for m in messages if isinstance(m, dict))
    return max(1, chars // 4) + 3 * len(messages)


def _reply(request: dict[str, Any]) -> tuple[str, int, str]:
    """The answer cut at the request's max_tokens, as an upstream would: (text, completion tokens, finish)."""
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < REPLY_TOKENS:
        return "".join(REPLY_PIECES[:limit]), limit, "length"
    return REPLY_TEXT, REPLY_TOKENS, "stop"


def _completion_body(request: dict[str, Any]) -> bytes:
    text, tokens, finish = _reply(request)
    prompt = _prompt_tokens(request)
    return _dumps(
        {
            "id": f"chatcmpl-bench{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request.get("model") or "bench-model"),
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens},
        }
    )


def _completion_response(request: dict[str, Any], keep_alive: bool) -> bytes:
    return _response(200, _completion_body(request), keep_alive=keep_alive)


def _stream_response(request: dict[str, Any], keep_alive: bool) -> bytes:
    """The whole SSE stream at once, as one chunked HTTP response."""
    ident = f"chatcmpl-bench{next(_ids)}"
    created = int(time.time())
    model = str(request.get("model") or "bench-model")

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    text, tokens, finish = _reply(request)
    events: list[dict[str, Any]] = [
        chunk({"role": "assistant", "content": ""}, None),
        chunk({"content": text}, None),
        chunk({}, finish),
    ]
    options = request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        prompt = _prompt_tokens(request)
        events.append(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": tokens,
                    "total_tokens": prompt + tokens,
                },
            }
        )
    parts = [b"data: " + _dumps(event) + b"\n\n" for event in events]
    parts.append(b"data: [DONE]\n\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n" + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n"
    )
    return head + body


_MODELS_BODY = _dumps(
    {"object": "list", "data": [{"id": "bench-model", "object": "model", "created": 0, "owned_by": "bench"}]}
)


class _Request:
    __slots__ = ("body", "keep_alive", "method", "path")

    def __init__(self, method: bytes, path: bytes, body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.keep_alive = keep_alive


class _BadRequest(Exception):
    pass


def _parse_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at `start`; (body, end offset) or None when incomplete."""
    pos = start
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[pos:line_end]).split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest("bad chunk size") from exc
        pos = line_end + 2
        if size == 0:
            # Skip trailers up to the empty line.
            while True:
                line_end = buffer.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                if line_end == pos:
                    return bytes(body), line_end + 2
                pos = line_end + 2
        if len(buffer) < pos + size + 2:
            return None
        body += buffer[pos : pos + size]
        if len(body) > MAX_BODY_BYTES:
            raise _BadRequest("body too large")
        pos += size + 2


def _parse_request(buffer: bytearray) -> tuple[_Request, int] | None:
    """One request from the front of `buffer`: (request, bytes consumed), or None when incomplete."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > MAX_HEADER_BYTES:
            raise _BadRequest("headers too large")
        return None
    lines = bytes(buffer[:head_end]).split(b"\r\n")
    try:
        method, target, version = lines[0].split(b" ", 2)
    except ValueError as exc:
        raise _BadRequest("bad request line") from exc
    content_length = 0
    chunked = False
    connection = b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                content_length = int(value.strip())
            except ValueError as exc:
                raise _BadRequest("bad content-length") from exc
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            connection = value.strip().lower()
    keep_alive = connection == b"keep-alive" if version == b"HTTP/1.0" else connection != b"close"
    start = head_end + 4
    if chunked:
        parsed = _parse_chunked(buffer, start)
        if parsed is None:
            return None
        body, end = parsed
    else:
        if content_length > MAX_BODY_BYTES:
            raise _BadRequest("body too large")
        end = start + content_length
        if len(buffer) < end:
            return None
        body = bytes(buffer[start:end])
    path = target.split(b"?", 1)[0]
    return _Request(method, path, body, keep_alive), end


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; requests are answered in order, one at a time."""

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._closing = False
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._process()

    def _process(self) -> None:
        while not self._busy and not self._closing and self._transport is not None:
            try:
                parsed = _parse_request(self._buffer)
            except _BadRequest as exc:
                self._send(_error(400, str(exc), keep_alive=False), keep_alive=False)
                return
            if parsed is None:
                return
            request, consumed = parsed
            del self._buffer[:consumed]
            self._handle(request)

    def _handle(self, request: _Request) -> None:
        global _chat_completions
        path = request.path.rstrip(b"/")
        keep_alive = request.keep_alive
        if path in (b"/v1/chat/completions", b"/chat/completions"):
            if request.method != b"POST":
                self._send(_error(405, "use POST", keep_alive), keep_alive)
                return
            _chat_completions += 1
            try:
                payload = _loads(request.body)
                if not isinstance(payload, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as exc:
                self._send(_error(400, f"invalid JSON body: {exc}", keep_alive), keep_alive)
                return
            reply: Callable[[], bytes] = (
                partial(_stream_response, payload, keep_alive)
                if payload.get("stream")
                else partial(_completion_response, payload, keep_alive)
            )
            self._busy = True
            if self._delay_s > 0:
                self._loop.call_later(self._delay_s, self._reply_later, reply, keep_alive)
            else:
                self._loop.call_soon(self._reply_later, reply, keep_alive)
        elif path in (b"/v1/models", b"/models"):
            self._send(_response(200, _MODELS_BODY, keep_alive=keep_alive), keep_alive)
        elif path == b"/stats":
            body = _dumps({"chat_completions": _chat_completions})
            self._send(_response(200, body, keep_alive=keep_alive), keep_alive)
        elif path in (b"/health", b"/healthz", b"/readyz"):
            self._send(_response(200, b'{"status":"ok"}', keep_alive=keep_alive), keep_alive)
        else:
            self._send(_error(404, f"no route for {request.path.decode(errors='replace')}", keep_alive), keep_alive)

    def _reply_later(self, reply: Callable[[], bytes], keep_alive: bool) -> None:
        self._busy = False
        if self._transport is None:
            return
        self._send(reply(), keep_alive)
        if self._buffer:
            self._process()

    def _send(self, data: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(data)
        if not keep_alive:
            self._closing = True
            transport.close()


async def serve(host: str, port: int, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(delay_s), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()
    print(f"upstream listening on http://{bound[0]}:{bound[1]} (delay {delay_s * 1000:g} ms)", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fake OpenAI-compatible upstream that answers chat completions after a fixed delay."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8799, help="port to bind; 0 picks one (default 8799)")
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="delay before each chat completion reply (default 20)"
    )
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio event loop")
    args = parser.parse_args(argv)
    run: Callable[..., None] = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            pass
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port, args.delay_ms / 1000.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
