"""POST /v1/traces: OpenTelemetry traces in, over OTLP/HTTP (protobuf or JSON), into the caller's project.

Any OTel SDK or collector can export here: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:7300/v1/traces`
with `OTEL_EXPORTER_OTLP_TRACES_HEADERS=authorization=Bearer <service key>`. The answer is an
`ExportTraceServiceResponse` in the request's encoding, sent once the spans are committed. A failure (a body
that is not an OTLP trace request: 400; past the size limit once inflated: 413; an unsupported Content-Type:
415; a bad key: 401/403; the database unavailable: 503 with Retry-After, so the exporter retries) is answered
with a `google.rpc.Status` in the request's encoding, as the OTLP specification asks (otel/status.py,
docs/opentelemetry.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from pilothouse.errors import ApiError, InvalidRequest, PayloadTooLarge
from pilothouse.otel.ingest import JSON, OtlpError, OtlpTooLarge, encode_response, media_type
from pilothouse.otel.ingest_store import StoreUnavailable
from pilothouse.otel.receiver import Redactor
from pilothouse.otel.status import failure_body
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.openapi import ErrorBody
from pilothouse.server.state import AppState
from pilothouse.tracing.repair import describe_error
from pilothouse.tracing.sink import transient

log = logging.getLogger("pilothouse.otel")

ROUTE = "/v1/traces"
RETRY_AFTER_S = 5
"""What a 503 (the database unavailable) asks the exporter to wait before it sends the request again."""


def _failure(error: ApiError, request: Request) -> Response:
    """`error` as OTLP wants a failure: a `google.rpc.Status` in the request's encoding."""
    try:
        kind = media_type(request.headers.get("content-type"))
    except OtlpError:
        kind = JSON
    return Response(failure_body(error, kind), status_code=error.status, media_type=kind, headers=error.headers)


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
                return _failure(exc, request)
            except Exception as exc:
                if transient(exc):  # the database failed (authentication reads it too): the exporter retries
                    return _failure(_unavailable(str(describe_error(exc))), request)
                log.exception("unexpected error in POST %s", ROUTE)
                error = ApiError("internal error; the server log has the details", status=500, code="internal_error")
                return _failure(error, request)

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
    require_role(principal, "service")
    try:
        kind = media_type(request.headers.get("content-type"))
    except OtlpError as exc:
        raise ApiError(str(exc), status=415, code="unsupported_media_type") from exc
    body = await request.body()
    redact = await _redactor(state, principal.project_id, principal.key_id)
    receiver = state.otlp
    try:
        answer = await asyncio.to_thread(
            receiver.receive,
            body,
            kind=kind,
            encoding=request.headers.get("content-encoding"),
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
    return Response(encode_response(answer, kind), media_type=kind)
