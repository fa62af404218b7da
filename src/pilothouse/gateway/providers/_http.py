"""The HTTP transport the upstream providers share: one pooled aiohttp session per provider, server-sent
event framing, and reading bodies (a failed response's is classified by `errors`).

Everything here is on the gateway's hot path, so it works on bytes and plain dicts only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from pilothouse.config import Deployment
from pilothouse.gateway.providers.base import ProviderError
from pilothouse.gateway.providers.errors import MAX_ERROR_BODY, error_from_exception, error_from_response
from pilothouse.gateway.providers.redact import redact

# Upstream connections per deployment (`options.max_connections`; 0: no limit). One connection carries one call
# at a time, so this caps a deployment's concurrent calls: at 1.5 s a call, 100 would cap it near 66 calls/s.
# 1000 keeps long LLM calls from queueing inside the gateway; each open connection is a file descriptor, so
# the process's `ulimit -n` must leave room for these plus the clients' own connections.
DEFAULT_MAX_CONNECTIONS = 1000
KEEPALIVE_S = 30.0


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


async def read_error(provider: str, resp: aiohttp.ClientResponse) -> ProviderError:
    """Read (a bounded amount of) a failed response's body and classify it."""
    try:
        body = await resp.content.read(MAX_ERROR_BODY)
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


async def post_json(
    provider: str, session: aiohttp.ClientSession, url: URL, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """POST a JSON body and return the JSON object answered; every failure is a classified ProviderError."""
    try:
        async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
            if resp.status >= 400:
                raise await read_error(provider, resp)
            raw, status = await resp.read(), resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise error_from_exception(provider, exc) from exc
    return loads_object(provider, raw, status)


async def post_events(
    provider: str, session: aiohttp.ClientSession, url: URL, body: dict[str, Any], headers: dict[str, str]
) -> AsyncGenerator[tuple[str, bytes], None]:
    """POST a JSON body and yield the server-sent events answered, as `iter_sse` does.

    A failed status raises before the first event; a broken connection raises mid-way. Iterate it inside
    `contextlib.aclosing` so that stopping early releases the connection at once.
    """
    try:
        async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
            if resp.status >= 400:
                raise await read_error(provider, resp)
            async for event in iter_sse(resp.content):
                yield event
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise error_from_exception(provider, exc, streaming=True) from exc
