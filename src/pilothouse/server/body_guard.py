"""Request bodies at the boundary: a size limit, a nesting-depth limit and a read deadline.

A body nested thousands of levels deep breaks recursive consumers further in (JSON encoders, the database's
JSON, request hashing), and a body that declares more bytes than it sends holds a connection until the
client gives up. Both are refused here, once, with the OpenAI error shape, instead of relying on each
consumer. The gateway's fast path calls `read_body` and `parse_json`; every other request with a body
(the management API) goes through `guard_body`, which reads and checks the body, then hands it on.

* `max_body_bytes`: 413, checked against Content-Length first, then while reading.
* `max_json_depth`: 400 `json_too_deep`. Depth counts nested objects and arrays (`{"a": [1]}` is 2; see
  `pilothouse.json_depth`, whose checks are iterative, so safe on any input).
* `body_read_timeout_s`: 408 `body_read_timeout` when the whole body has not arrived in time.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, NoReturn

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pilothouse.config import Settings
from pilothouse.errors import ApiError, InvalidRequest, PayloadTooLarge
from pilothouse.json_depth import brackets_within, nesting_exceeds, raw_nesting_exceeds

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
_CLOSE = {"connection": "close"}  # the rest of the body is left unread: the connection cannot serve another request


class ClientDisconnected(asyncio.CancelledError):
    """The client went away while sending its body: nothing is left to answer (it cancels the request)."""


def too_deep(limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"the JSON in the request body is nested more than {limit} levels deep (objects and arrays; the limit is "
        "max_json_depth): send flatter data",
        code="json_too_deep",
    )


def read_timeout(timeout_s: float, received: int) -> ApiError:
    return ApiError(
        f"the request body did not arrive within {timeout_s:g} s (body_read_timeout_s; {received} bytes received): "
        "send the whole body promptly, with a Content-Length that matches it",
        status=408,
        code="body_read_timeout",
        headers=_CLOSE,
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _Deadline:
    """Cancels the current task after `timeout_s` unless disarmed first.

    What `asyncio.timeout` does, at a quarter of its cost per request (one timer handle, no context
    manager bookkeeping), which matters on the gateway's hot path."""

    __slots__ = ("expired", "handle", "task")

    def __init__(self, timeout_s: float) -> None:
        self.expired = False
        self.task = asyncio.current_task()
        self.handle = asyncio.get_running_loop().call_later(timeout_s, self._expire)

    def _expire(self) -> None:
        self.expired = True
        if self.task is not None:
            self.task.cancel()

    def caught(self) -> bool:
        """In an `except CancelledError`: whether this deadline caused it (then the cancellation is withdrawn)."""
        if self.expired and self.task is not None:
            self.task.uncancel()
            return True
        return False


async def read_body(scope: Scope, receive: Receive, *, max_bytes: int, timeout_s: float) -> bytes:
    """The whole request body, within `max_bytes` and `timeout_s`; a client that disconnects cancels the request."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"request body is {declared} bytes; the limit is {max_bytes} bytes (max_body_bytes)", headers=_CLOSE
        )
    parts: list[bytes] = []
    size = 0
    deadline = _Deadline(timeout_s)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"request body exceeds the limit of {max_bytes} bytes (max_body_bytes)", headers=_CLOSE
                )
            if not message.get("more_body", False):
                return b"".join(parts) + chunk if parts else chunk
            parts.append(chunk)
    except asyncio.CancelledError as exc:
        if not isinstance(exc, ClientDisconnected) and deadline.caught():
            raise read_timeout(timeout_s, size) from None
        raise
    finally:
        deadline.handle.cancel()


def parse_json(raw: bytes, max_depth: int) -> Any:
    """The body as JSON, refused with a 400 when empty, malformed or nested more than `max_depth` levels."""
    if not raw:
        raise InvalidRequest("the request body is empty: send a JSON object")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if raw_nesting_exceeds(raw, max_depth):  # a parser's own depth limit is reported as ours
            raise too_deep(max_depth) from None
        raise InvalidRequest(f"malformed JSON in the request body: {exc}", code="invalid_json") from exc
    # Counting brackets is fast and bounds the depth, so the walk only runs for bodies that could be too deep.
    if not brackets_within(raw, max_depth) and nesting_exceeds(value, max_depth):
        raise too_deep(max_depth)
    return value


_INT64 = 2**63


def _checked_int(text: str) -> int:
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise InvalidRequest(
            f"the integer {text[:24]}{'...' if len(text) > 24 else ''} in the request body is out of range: "
            "integers must fit in 64 bits (-2**63 to 2**63-1)",
            code="json_number_out_of_range",
        )
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidRequest(
            f"the number {text[:24]} in the request body is too large for a double: send a finite number",
            code="json_number_out_of_range",
        )
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidRequest(
        f"{name} in the request body is not JSON: send a finite number or null", code="json_number_out_of_range"
    )


def check_json_values(raw: bytes) -> None:
    """Refuse numbers no store or encoder further in can hold (integers past 64 bits, NaN, Infinity).

    The management API's bodies are parsed by the standard library, which keeps such numbers exactly, and they
    then fail deep inside (orjson, the database); refusing them here gives the caller a 400 naming the value.
    Text that is not JSON at all is left to the route, which answers its own 422."""
    try:
        json.loads(raw, parse_int=_checked_int, parse_float=_checked_float, parse_constant=_refuse_constant)
    except ValueError:  # malformed JSON (InvalidRequest is not a ValueError)
        return


def _is_json(scope: Scope) -> bool:
    """FastAPI reads a body as JSON when it says so, or says nothing."""
    content_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    return not content_type or content_type == "application/json" or content_type.endswith("+json")


async def _send_error(send: Send, error: ApiError) -> None:
    headers = [(b"content-type", b"application/json")]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(error.body())})


async def guard_body(app: ASGIApp, settings: Settings, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app` on a request whose body is read (within the limits) and checked before `app` sees it."""
    if scope["type"] != "http" or scope["method"] in _BODYLESS:
        await app(scope, receive, send)
        return
    try:
        raw = await read_body(scope, receive, max_bytes=settings.max_body_bytes, timeout_s=settings.body_read_timeout_s)
        if raw and _is_json(scope):
            if raw_nesting_exceeds(raw, settings.max_json_depth):
                raise too_deep(settings.max_json_depth)
            check_json_values(raw)
    except ApiError as exc:
        await _send_error(send, exc)
        return
    except ClientDisconnected:
        return
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()  # after the body: wait for the disconnect, as the server would
        delivered = True
        return {"type": "http.request", "body": raw, "more_body": False}

    await app(scope, replay, send)
