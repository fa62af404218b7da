"""The HTTP face of the gateway: POST /v1/chat/completions and POST /v1/embeddings, as plain ASGI.

They bypass FastAPI's routing and dependency machinery (a measurable share of CPU per request at
gateway rates); everything else goes to the FastAPI app. This module only authenticates, reads the body
(server/body_guard.py), builds the `GatewayCall`, runs it through the pipeline (`state.pipeline.run`, which
owns the stages, the trace and settlement: gateway/pipeline.py) and writes bytes: JSON or SSE, with
`x-pilothouse-trace-id` on every response (the trace is stored before the response ends).

A client that disconnects while its upstream call is awaited cancels that call (server/client_watch.py is
the call's hooks): the trace is stored as abandoned and the request settles what the call spent. Every error
response says `x-should-retry` (obeyed by the official OpenAI and Anthropic SDKs), so a client's own retries
do not multiply the upstream calls the gateway already made.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from pilothouse.errors import ApiError
from pilothouse.gateway.call import CallerLeft, GatewayCall
from pilothouse.gateway.stages.base import Events, Outcome
from pilothouse.gateway.streaming import DONE
from pilothouse.sdk.tracing import traceparent
from pilothouse.server.auth import require_model_access
from pilothouse.server.body_guard import parse_json, read_body
from pilothouse.server.client_watch import ClientWatch
from pilothouse.server.state import AppState
from pilothouse.store.ids import new_trace_id

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


class GatewayEndpoints:
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = self.state.auth.authenticate(_header(scope, b"authorization"))
            require_model_access(principal)
        except ApiError as exc:
            await send_error(send, exc, new_trace_id())
            return
        call = GatewayCall(
            kind="chat" if scope["path"] == CHAT_PATH else "embeddings",
            body=None,
            principal=principal,
            source="http",
            headers=scope["headers"],
            session_id=_header(scope, b"x-pilothouse-session-id"),
        )
        joined = traceparent.parse(_header(scope, b"traceparent"))  # W3C trace context: join the caller's trace
        if joined is not None:
            call.trace_id, call.parent_span_id = joined.trace_id, joined.span_id
        settings = self.state.settings
        try:
            body = await read_body(
                scope, receive, max_bytes=settings.max_body_bytes, timeout_s=settings.body_read_timeout_s
            )
            call.body = parse_json(body, settings.max_json_depth)  # size, read deadline and nesting
        except ApiError as exc:
            call.refusal = exc  # traced and answered by the pipeline like any refusal
        watch = ClientWatch()
        try:
            if call.refusal is None:
                watch.start(receive)  # from here on, receive() only reports a disconnect
            outcome = await self.state.pipeline.run(call, watch)
            if outcome.error is not None:
                await send_error(send, outcome.error, outcome.trace_id)
            elif outcome.events is not None:
                await self._stream(send, watch, outcome, outcome.events)
            else:
                await send_json(send, 200, outcome.payload, outcome.trace_id, outcome.headers or None)
        except CallerLeft:
            return  # the call was not made or was cancelled; its trace is stored as abandoned, nobody to answer
        finally:
            await watch.close()

    async def _stream(self, send: Send, watch: ClientWatch, outcome: Outcome, events: Events) -> None:
        """Relay the events; `[DONE]` only after the stream ended and its trace was stored (the pipeline stores
        it as the events run out). A client that left stops the relay: closing the events meters, settles and
        stores the trace as abandoned."""
        disconnected, ended = watch.left, False
        try:
            first = await anext(events, b"")
            headers = [*_SSE, (b"x-pilothouse-trace-id", outcome.trace_id.encode())]
            headers += [(k.encode(), v.encode()) for k, v in outcome.headers.items()]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for event in events:
                if disconnected.is_set():
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            else:
                ended = True
        finally:
            await events.aclose()
        if ended and not disconnected.is_set():
            await send({"type": "http.response.body", "body": DONE, "more_body": False})
