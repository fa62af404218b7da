"""Shared plumbing for the HTTP providers: pooled sessions, SSE parsing and error classification.

Everything here is on the gateway's hot path, so it works on bytes and plain dicts only.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from pilothouse.config import Deployment
from pilothouse.gateway.providers.base import ErrorKind, ProviderError
from pilothouse.gateway.providers.redact import redact

# Upstream connections per deployment (`options.max_connections`; 0: no limit). One connection carries one call
# at a time, so this caps a deployment's concurrent calls: at 1.5 s a call, 100 would cap it near 66 calls/s.
# 1000 keeps long LLM calls from queueing inside the gateway; each open connection is a file descriptor, so
# the process's `ulimit -n` must leave room for these plus the clients' own connections.
DEFAULT_MAX_CONNECTIONS = 1000
KEEPALIVE_S = 30.0
_MAX_ERROR_BODY = 64 * 1024


class SessionHolder:
    """One pooled `aiohttp.ClientSession` per provider, created lazily inside the running loop.

    A session is bound to the loop it was made in; if the provider is used from another loop (tests,
    a restarted server) a fresh session is made and the old one is dropped.
    """

    __slots__ = ("_deployment", "_loop", "_session")

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> aiohttp.ClientSession:
        session = self._session
        loop = asyncio.get_running_loop()
        if session is None or session.closed or self._loop is not loop:
            session = self._session = _new_session(self._deployment)
            self._loop = loop
        return session

    async def aclose(self) -> None:
        session, self._session, self._loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()


def connection_limit(deployment: Deployment) -> int:
    """The deployment's pool size: `options.max_connections` (validated by the config), else the default."""
    return int(deployment.options.get("max_connections", DEFAULT_MAX_CONNECTIONS))


def _new_session(deployment: Deployment) -> aiohttp.ClientSession:
    options = deployment.options
    limit = connection_limit(deployment)
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=limit, keepalive_timeout=KEEPALIVE_S, ttl_dns_cache=300
    )
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=deployment.connect_timeout_s, sock_read=deployment.timeout_s
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=bool(options.get("trust_env", False)),
        raise_for_status=False,
    )


async def iter_sse(stream: aiohttp.StreamReader) -> AsyncIterator[tuple[str, bytes]]:
    """Yield `(event, data)` for each server-sent event.

    Follows the SSE rules: lines end in LF, CRLF or CR; `data:` lines of one event are joined with LF;
    a blank line ends an event; lines starting with `:` are comments (keepalives). A final event with
    no trailing blank line is still delivered. `event` is "" when the server named none.
    """
    buffer = b""
    event = ""
    data: list[bytes] = []
    async for chunk in stream.iter_any():
        buffer = buffer + chunk if buffer else chunk
        lines = buffer.splitlines(keepends=True)
        last = lines[-1]
        # An unterminated tail (or a lone CR that may be half of CRLF) waits for the next chunk.
        if last.endswith(b"\n"):
            buffer = b""
        else:
            buffer = last
            del lines[-1]
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if data:
                    yield event, data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                event = ""
                continue
            if line[0] == 58:  # b":" comment / keepalive
                continue
            name, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
    tail = buffer.rstrip(b"\r\n")
    if tail.startswith(b"data:"):
        value = tail[5:]
        data.append(value[1:] if value[:1] == b" " else value)
    if data:
        yield event, b"\n".join(data)


# --- errors -------------------------------------------------------------------------------------

_CONTEXT_RE = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|prompt is too long|input is too long", re.IGNORECASE
)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# Error "type" strings (Anthropic's, and OpenAI-style) -> kind, for bodies that name one.
_TYPE_KINDS: dict[str, ErrorKind] = {
    "overloaded_error": "unavailable",
    "rate_limit_error": "rate_limit",
    "authentication_error": "auth",
    "permission_error": "auth",
    "timeout_error": "timeout",
    "api_error": "upstream",
    "server_error": "upstream",
}
_TYPE_STATUS = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "authentication_error": 401,
    "permission_error": 403,
    "timeout_error": 504,
    "api_error": 500,
    "server_error": 500,
    "invalid_request_error": 400,
    "not_found_error": 404,
    "request_too_large": 413,
}


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from `retry-after-ms`, `Retry-After` (seconds or HTTP date) or OpenAI's
    `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` ("1s", "6m0s", "20ms")."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    resets = [
        seconds
        for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if (seconds := _parse_duration(headers.get(name))) is not None
    ]
    return max(resets) if resets else None


def _parse_duration(value: str | None) -> float | None:
    if not value:
        return None
    parts = _DURATION_RE.findall(value)
    if not parts:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _error_fields(body: bytes) -> tuple[str, str, str]:
    """(message, type, code) from an error body in OpenAI, Anthropic, FastAPI or plain-text form."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:2000], "", ""
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("error") or ""
            if not isinstance(message, str):
                message = orjson.dumps(message).decode()
            return message, str(error.get("type") or ""), str(error.get("code") or "")
        if isinstance(error, str):
            return error, "", ""
    return orjson.dumps(payload).decode()[:2000], "", ""


def error_from_response(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Classify a non-2xx upstream response; the message carries the upstream's own words, credentials
    redacted (an upstream may quote the request's headers back)."""
    message, err_type, code = _error_fields(body[:_MAX_ERROR_BODY])
    text = redact(f"{provider} upstream returned HTTP {status}: {message or 'no error message'}")
    kind: ErrorKind
    if status == 429:
        return ProviderError("rate_limit", text, status=status, retry_after=parse_retry_after(headers))
    if status in (408, 504):
        kind = "timeout"
    elif status == 529 or err_type == "overloaded_error":
        kind = "unavailable"
    elif status >= 500:
        kind = "upstream"
    elif status in (401, 403):
        kind = "auth"
    elif code in _CONTEXT_CODES or _CONTEXT_RE.search(message):
        kind = "context_window"
    else:
        kind = "bad_request"
    return ProviderError(kind, text, status=status)


def error_from_event(provider: str, error: Any) -> ProviderError:
    """Classify an error delivered inside a stream (`{"type": ..., "message": ...}`)."""
    if not isinstance(error, dict):
        return ProviderError("upstream", redact(f"{provider} stream error: {error}"), status=500)
    err_type = str(error.get("type") or "")
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else _TYPE_STATUS.get(err_type, 500)
    kind = _TYPE_KINDS.get(err_type)
    if kind is None:
        return error_from_response(provider, status, {}, orjson.dumps({"error": error}))
    message = str(error.get("message") or err_type)
    return ProviderError(kind, redact(f"{provider} stream error ({err_type}): {message}"), status=status)


def error_from_exception(provider: str, exc: BaseException, *, streaming: bool = False) -> ProviderError:
    """Classify a transport failure (no usable HTTP response)."""
    if isinstance(exc, TimeoutError):
        return ProviderError("timeout", redact(f"{provider} upstream timed out: {exc!r}"))
    where = "stream broke mid-way" if streaming else "upstream unreachable"
    return ProviderError("unavailable", redact(f"{provider} {where}: {exc!r}"))


async def read_error(provider: str, resp: aiohttp.ClientResponse) -> ProviderError:
    """Read (a bounded amount of) a failed response's body and classify it."""
    try:
        body = await resp.content.read(_MAX_ERROR_BODY)
    except (aiohttp.ClientError, TimeoutError):
        body = b""
    return error_from_response(provider, resp.status, resp.headers, body)


def loads_object(provider: str, raw: bytes, status: int = 200) -> dict[str, Any]:
    """Decode a JSON object body; anything else is an upstream fault."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        preview = raw[:200].decode("utf-8", "replace")
        message = redact(f"{provider} upstream sent invalid JSON: {preview!r}")
        raise ProviderError("upstream", message, status=status) from exc
    if not isinstance(value, dict):
        raise ProviderError("upstream", f"{provider} upstream sent a non-object JSON body", status=status)
    return value
