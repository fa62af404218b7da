"""POST /v1/traces: OpenTelemetry traces in, over OTLP/HTTP (protobuf or JSON), into the caller's project.

Any OTel SDK or collector can export here: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:7300/v1/traces`
with `OTEL_EXPORTER_OTLP_TRACES_HEADERS=authorization=Bearer <service key>`. The answer is an
`ExportTraceServiceResponse` in the request's encoding, sent once the spans are committed. A failure (a body
that is not an OTLP trace request: 400; past the size limit once inflated: 413; an unsupported Content-Type:
415; a bad key: 401/403; the database unavailable: 503 with Retry-After, so the exporter retries) is answered
with a `google.rpc.Status` in the request's encoding, as the OTLP specification asks (otel/status.py,
docs/opentelemetry.md).

A request that carries a key is served by `OtlpEndpoint`, plain ASGI (server/app.py sends it there, as it does
the gateway's two endpoints): FastAPI's routing, its dependency solving (two thread-pool hops, for the state
and the key) and its middleware cost a measurable share of a request's CPU at exporter rates
(docs/benchmarks.md, OTLP ingest). It reads the body within the same limits as every other route
(server/body_guard.py) and answers exactly as the route below, which serves the rest (a dashboard session, no
key at all) and documents the endpoint in the OpenAPI document. Either way the request is decoded, mapped and
stored in one worker thread, and answered once the transaction has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from pilothouse.errors import ApiError, InvalidRequest, PayloadTooLarge
from pilothouse.json_depth import raw_nesting_exceeds
from pilothouse.otel.ingest import JSON, OtlpError, OtlpTooLarge, encode_response, media_type
from pilothouse.otel.ingest_store import StoreUnavailable
from pilothouse.otel.receiver import Redactor
from pilothouse.otel.status import failure_body
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.body_guard import ClientDisconnected, check_json_values, read_body, too_deep
from pilothouse.server.openapi import ErrorBody
from pilothouse.server.state import AppState
from pilothouse.tracing.repair import describe_error
from pilothouse.tracing.sink import transient

log = logging.getLogger("pilothouse.otel")

ROUTE = "/v1/traces"
RETRY_AFTER_S = 5
"""What a 503 (the database unavailable) asks the exporter to wait before it sends the request again."""


def _failure(error: ApiError, content_type: str | None) -> Response:
    """`error` as OTLP wants a failure: a `google.rpc.Status` in the request's encoding."""
    try:
        kind = media_type(content_type)
    except OtlpError:
        kind = JSON
    return Response(failure_body(error, kind), status_code=error.status, media_type=kind, headers=error.headers)


def _unexpected(error: Exception) -> ApiError:
    """What an exception no code path answers becomes: a 503 (retried) when the database failed (authentication
    reads it too), else a 500 (logged)."""
    if transient(error):
        return _unavailable(str(describe_error(error)))
    log.exception("unexpected error in POST %s", ROUTE, exc_info=error)
    return ApiError("internal error; the server log has the details", status=500, code="internal_error")


def _unavailable(why: str) -> ApiError:
    return ApiError(
        f"the database is unavailable ({why}); nothing was stored, send the request again",
        status=503,
        code="store_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class OtlpRoute(APIRoute):
    """Answers every failure of the route, authentication included, with a `google.rpc.Status` body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _failure(exc, request.headers.get("content-type"))
            except Exception as exc:
                return _failure(_unexpected(exc), request.headers.get("content-type"))

        return answer


router = APIRouter(tags=["opentelemetry"], route_class=OtlpRoute)


async def _redactor(state: AppState, project_id: str, key_id: str) -> Redactor | None:
    """The project's storage redaction for ingested content, or None when no policy redacts it."""
    guards = state.pipeline.services.guards
    if guards is None or not state.settings.capture_content:
        return None
    guard_state = await guards.resolve(project_id, key_id=key_id, model=None, prompt=None, route=ROUTE)
    plan = None if guard_state is None else guard_state.storage
    return None if plan is None else plan.redact_trace


@router.post(
    ROUTE,
    summary="Ingest OpenTelemetry traces (OTLP/HTTP)",
    responses={
        413: {"model": ErrorBody, "description": "The body inflates past max_body_bytes."},
        415: {
            "model": ErrorBody,
            "description": "Content-Type is neither application/x-protobuf nor application/json.",
        },
        503: {"model": ErrorBody, "description": "The database is unavailable: nothing was stored; retry."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": {"type": "object", "description": "OTLP JSON ExportTraceServiceRequest"}
                },
            },
        }
    },
)
async def ingest(request: Request, state: StateDep, principal: PrincipalDep) -> Response:
    """Store the spans of an OTLP `ExportTraceServiceRequest` as traces of the key's project (service role
    and up); `gen_ai.*` attributes become model, usage, cost and content (otel/genai_map.py)."""
    body = await request.body()
    answer, kind = await _ingest(state, principal, body, request.headers.get("content-type"), request.headers)
    return Response(answer, media_type=kind)


async def _ingest(
    state: AppState, principal: Principal, body: bytes, content_type: str | None, headers: Any
) -> tuple[bytes, str]:
    """Store the spans of `body` for `principal`; the answer's bytes and media type (raises ApiError)."""
    require_role(principal, "service")
    try:
        kind = media_type(content_type)
    except OtlpError as exc:
        raise ApiError(str(exc), status=415, code="unsupported_media_type") from exc
    redact = await _redactor(state, principal.project_id, principal.key_id)
    receiver = state.otlp
    try:
        answer = await asyncio.to_thread(
            receiver.receive,
            body,
            kind=kind,
            encoding=headers.get("content-encoding"),
            project_id=principal.project_id,
            api_key_id=principal.key_id,
            redact=redact,
        )
    except OtlpTooLarge as exc:
        raise PayloadTooLarge(str(exc), code="body_too_large") from exc
    except OtlpError as exc:
        raise InvalidRequest(str(exc), code="invalid_otlp") from exc
    except StoreUnavailable as exc:
        raise _unavailable(str(exc)) from exc
    return encode_response(answer, kind), kind


class _Headers:
    """The few request headers the endpoint reads, from an ASGI scope (names lower-case, as ASGI sends them)."""

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def get(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self._scope["headers"]:
            if key == wanted:
                return str(value.decode("latin-1"))
        return None


def serves(scope: Scope) -> bool:
    """Whether `OtlpEndpoint` answers this request: a POST to the route with a key (everything else, a dashboard
    session or no key at all included, goes through FastAPI and the route above)."""
    return scope["method"] == "POST" and _Headers(scope).get("authorization") is not None


class OtlpEndpoint:
    """POST /v1/traces with a key, as plain ASGI (see the module docstring): the same limits, checks, answers
    and failures as the FastAPI route."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _Headers(scope)
        content_type = headers.get("content-type")
        settings = self.state.settings
        try:
            try:
                # what server/body_guard.py's guard_body checks for every other route, in the same order
                body = await read_body(
                    scope, receive, max_bytes=settings.max_body_bytes, timeout_s=settings.body_read_timeout_s
                )
                if body and _json_declared(content_type):
                    if raw_nesting_exceeds(body, settings.max_json_depth):
                        raise too_deep(settings.max_json_depth)
                    check_json_values(body)
                principal = self.state.auth.authenticate(headers.get("authorization"))
                answer, kind = await _ingest(self.state, principal, body, content_type, headers)
            except ApiError:
                raise
            except ClientDisconnected:
                return  # nobody to answer; nothing was stored
            except Exception as exc:
                raise _unexpected(exc) from exc
        except ApiError as exc:
            response = _failure(exc, content_type)
        else:
            response = Response(answer, media_type=kind)
        await response(scope, receive, send)


def _json_declared(content_type: str | None) -> bool:
    """What guard_body reads as JSON: a JSON media type, or none said."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")
