"""POST /v1/traces: OpenTelemetry traces in, over OTLP/HTTP (protobuf or JSON), into the caller's project.

Any OTel SDK or collector can export here: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:7300/v1/traces`
with `OTEL_EXPORTER_OTLP_TRACES_HEADERS=authorization=Bearer <service key>`. The answer is an
`ExportTraceServiceResponse` in the request's encoding; a body that is not an OTLP trace request is a 400
with our error shape, an unsupported Content-Type a 415 (docs/opentelemetry.md).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from pilothouse.errors import ApiError, InvalidRequest
from pilothouse.otel.ingest import OtlpError, encode_response, media_type
from pilothouse.otel.receiver import Redactor
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.openapi import ErrorBody
from pilothouse.server.state import AppState

router = APIRouter(tags=["opentelemetry"])

ROUTE = "/v1/traces"


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
        415: {"model": ErrorBody, "description": "Content-Type is neither application/x-protobuf nor application/json."}
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
    except OtlpError as exc:
        raise InvalidRequest(str(exc), code="invalid_otlp") from exc
    return Response(encode_response(answer, kind), media_type=kind)
