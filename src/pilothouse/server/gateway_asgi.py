"""The two hot endpoints, POST /v1/chat/completions and POST /v1/embeddings, as plain ASGI.

They bypass FastAPI's routing and dependency machinery (a measurable share of CPU per request at
gateway rates); everything else goes to the FastAPI app. Every response carries `x-pilothouse-trace-id`,
and the request's trace is stored (committed) before the response ends.

A client that disconnects while its upstream call is awaited cancels that call (server/client_watch.py):
the trace is stored as abandoned and the request settles what the call spent. Every error response says
`x-should-retry` (obeyed by the official OpenAI and Anthropic SDKs), so a client's own retries do not
multiply the upstream calls the gateway already made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from pilothouse.errors import ApiError
from pilothouse.gateway.admission import Ticket
from pilothouse.gateway.streaming import DONE
from pilothouse.server.auth import require_model_access
from pilothouse.server.body_guard import parse_json, read_body
from pilothouse.server.client_watch import ClientLeft, ClientWatch
from pilothouse.server.state import AppState
from pilothouse.store.ids import new_trace_id
from pilothouse.tracing.model import TraceRecord

log = logging.getLogger("pilothouse.gateway")

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
FAST_PATHS = {CHAT_PATH, EMBEDDINGS_PATH}
_JSON = [(b"content-type", b"application/json")]
_SSE = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


# Refusals a later try may pass (no upstream call was made for them); every other error says "false".
_RETRY_HELPS = frozenset({"rate_limit_exceeded", "limits_unavailable"})
# Upstream failures of a call the gateway made once and did not retry (embeddings; chat errors carry their own).
_UPSTREAM_RETRYABLE = frozenset({"upstream_rate_limited", "upstream_timeout", "upstream_unavailable", "upstream_error"})


def should_retry(error: ApiError) -> str:
    """The `x-should-retry` of an error response: the router's verdict where it routed the call, else "true"
    only where the gateway made no retry of its own and another try may help."""
    verdict = error.headers.get("x-should-retry")
    if verdict is not None:
        return verdict
    return "true" if error.code in _RETRY_HELPS or error.code in _UPSTREAM_RETRYABLE else "false"


async def send_error(send: Send, error: ApiError, trace_id: str) -> None:
    await send_json(
        send, error.status, error.body(), trace_id, {**error.headers, "x-should-retry": should_retry(error)}
    )


async def send_json(send: Send, status: int, payload: Any, trace_id: str, extra: dict[str, str] | None = None) -> None:
    headers = [*_JSON, (b"x-pilothouse-trace-id", trace_id.encode())]
    for key, value in (extra or {}).items():
        headers.append((key.encode(), value.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


def _record_abandoned(trace: TraceRecord) -> None:
    """The client left while the upstream call was awaited; the call was cancelled (the router marked the
    attempt it cut: `pilothouse.upstream.cancelled`, usage unknown)."""
    for span in trace.spans:
        if span.ended_at is None:
            span.attributes["pilothouse.client_disconnected"] = True
            span.finish(
                status="error", error="the client disconnected before the answer; the upstream call was cancelled"
            )
    trace.status = "error"


def _record_failure(trace: TraceRecord, error: ApiError) -> None:
    """Put the refusal on the trace: on its model span if one was opened, else on a request step span."""
    open_spans = [s for s in trace.spans if s.ended_at is None]
    span = open_spans[-1] if open_spans else trace.span("step", "request")
    span.attributes["error.type"] = error.code or error.type
    span.attributes["http.response.status_code"] = error.status
    span.finish(status="error", error=error.message)
    trace.status = "error"


class _TraceOnce:
    """Stores a request's trace exactly once: early (before the response ends) or, failing that, at the end."""

    def __init__(self, state: AppState, trace: TraceRecord) -> None:
        self.state = state
        self.trace = trace
        self.stored = False
        self.ticket: Ticket | None = None  # what the admission stage reserved; settled as the trace is stored

    async def store(self) -> None:
        if self.stored:
            return
        self.stored = True  # write() enqueues synchronously, so a cancelled await still stores it
        if self.ticket is not None:  # settle: the actual tokens and cost replace the reservations
            await asyncio.shield(self.ticket.settle())
        self.trace.finish()
        await asyncio.shield(self.state.sink.write(self.trace))

    async def store_abandoned(self) -> None:
        for span in self.trace.spans:
            if span.ended_at is None:
                span.finish(status="error", error="request ended before the call completed")
                self.trace.status = "error"
        await self.store()


class GatewayEndpoints:
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        try:
            principal = self.state.auth.authenticate(_header(scope, b"authorization"))
            require_model_access(principal)
        except ApiError as exc:
            await send_error(send, exc, new_trace_id())
            return
        trace = TraceRecord(
            project_id=principal.project_id,
            name="chat" if path == CHAT_PATH else "embeddings",
            api_key_id=principal.key_id,
            session_id=_header(scope, b"x-pilothouse-session-id"),
        )
        once = _TraceOnce(self.state, trace)
        try:
            await self._handle(scope, receive, send, once)
        finally:
            await once.store_abandoned()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, once: _TraceOnce) -> None:
        watch = ClientWatch()
        try:
            await self._answer(scope, receive, send, once, watch)
        except (asyncio.CancelledError, ClientLeft) as exc:
            if isinstance(exc, asyncio.CancelledError) and not watch.absorbs():
                raise
            _record_abandoned(once.trace)  # the call was cancelled (or never made); settled, stored as abandoned
            await once.store()
        finally:
            await watch.close()

    async def _answer(self, scope: Scope, receive: Receive, send: Send, once: _TraceOnce, watch: ClientWatch) -> None:
        gateway = self.state.gateway
        trace = once.trace
        cache, plan, hit = self.state.cache, None, None
        try:
            settings = self.state.settings
            body = await read_body(
                scope, receive, max_bytes=settings.max_body_bytes, timeout_s=settings.body_read_timeout_s
            )
            raw = parse_json(body, settings.max_json_depth)  # size, read deadline and nesting: server/body_guard.py
            watch.start(receive)  # from here on, receive() only reports a disconnect
            if scope["path"] == EMBEDDINGS_PATH:
                eprep = gateway.prepare_embeddings(raw, trace)
                once.ticket = await self.state.admission.admit(eprep, trace, scope["headers"])  # admission
                watch.arm()  # raises ClientLeft if the client left during admission: no call at all
                payload = await gateway.embed(eprep)
                watch.disarm()
            else:
                prep = await gateway.prepare_chat_async(raw, trace)  # prompt rendering off the event loop
                once.ticket = await self.state.admission.admit(prep, trace, scope["headers"])  # admission
                if cache is not None:  # cache lookup: a hit skips routing (gateway/cache)
                    plan, hit = await cache.lookup_request(prep, trace, scope["headers"])
                if prep.body.stream:
                    events = hit.events(prep.body.include_usage) if hit is not None else gateway.chat_stream(prep)
                    if cache is not None and plan is not None and hit is None:  # cache store, once it ended well
                        events = cache.record_stream(plan, prep, trace, events)
                    try:
                        watch.arm()  # raises ClientLeft if the client left during admission: no call at all
                        first = await anext(events, b"")  # raises ApiError before any byte is sent
                    finally:
                        watch.disarm()
                    await self._stream(send, watch, first, events, once, plan.headers() if plan else None)
                    return
                if hit is not None:
                    payload = hit.completion()
                else:
                    watch.arm()
                    payload = await gateway.chat(prep)
                    watch.disarm()
                prep.span.finish()
                if cache is not None and plan is not None and hit is None:  # cache store
                    await cache.store_completion(plan, prep, trace, payload)
        except ClientLeft:
            raise
        except ApiError as exc:
            watch.disarm()
            _record_failure(trace, exc)
            await once.store()
            await send_error(send, exc, trace.id)
            return
        except Exception as exc:  # a bug of ours: answer in the API's error shape and keep the trace
            log.exception("unexpected error in %s (trace %s)", scope["path"], trace.id)
            error = ApiError(
                f"internal error ({type(exc).__name__}); quote trace id {trace.id} when reporting it",
                status=500,
                code="internal_error",
            )
            error.type = "api_error"
            watch.disarm()
            _record_failure(trace, error)
            await once.store()
            await send_error(send, error, trace.id)
            return
        # Stored before answering, so the trace is readable the moment the caller has the answer.
        await once.store()
        await send_json(send, 200, payload, trace.id, plan.headers() if plan else None)

    async def _stream(
        self,
        send: Send,
        watch: ClientWatch,
        first: bytes,
        events: AsyncGenerator[bytes, None],
        once: _TraceOnce,
        extra: dict[str, str] | None = None,
    ) -> None:
        disconnected = watch.left
        try:
            headers = [*_SSE, (b"x-pilothouse-trace-id", once.trace.id.encode())]
            headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for event in events:
                if disconnected.is_set():
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await events.aclose()
            if not disconnected.is_set():
                await once.store()
                await send({"type": "http.response.body", "body": DONE, "more_body": False})
        finally:
            await events.aclose()  # meters what an abandoned stream used before its trace is stored
