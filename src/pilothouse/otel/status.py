"""The body of a failed OTLP/HTTP request: a `google.rpc.Status`, in the request's encoding.

The OTLP specification (opentelemetry-proto docs/specification.md, "Failures") asks that every 4xx and 5xx
answer of an OTLP/HTTP endpoint carry a `google.rpc.Status` describing the problem, encoded as the request was:
binary protobuf (`application/x-protobuf`) for a protobuf request, the protobuf JSON mapping for a JSON one. A
`400` carries a `google.rpc.BadRequest` in `details` naming what is wrong; every failure also carries a
`google.rpc.ErrorInfo` whose `reason` is our error code (`invalid_otlp`, `unauthorized`, ...).

The JSON form also keeps our usual `{"error": {...}}` object beside the Status fields, so a client of the rest
of the API reads an OTLP failure the same way (OTLP JSON readers ignore fields they do not know).
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]  # .pyi, no py.typed

from pilothouse.errors import ApiError
from pilothouse.otel.ingest import PROTOBUF

DOMAIN = "pilothouse"
"""`ErrorInfo.domain` of our failures."""

_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}
"""HTTP status -> `google.rpc.Code` (the specification leaves `Status.code` optional; set for the record)."""


def status_of(error: ApiError) -> Any:
    """The `google.rpc.Status` describing `error` (typed Any: googleapis-common-protos ships no py.typed)."""
    status = status_pb2.Status(
        code=_CODES.get(error.status, code_pb2.INTERNAL if error.status >= 500 else code_pb2.FAILED_PRECONDITION),
        message=error.message,
    )
    if error.status == 400:
        bad = error_details_pb2.BadRequest()
        bad.field_violations.add(field=error.param or "body", description=error.message)
        status.details.add().Pack(bad)
    if error.code:
        status.details.add().Pack(error_details_pb2.ErrorInfo(reason=error.code, domain=DOMAIN))
    return status


def failure_body(error: ApiError, kind: str) -> bytes:
    """The body answering a failed OTLP request of encoding `kind` (protobuf or JSON)."""
    status = status_of(error)
    if kind == PROTOBUF:
        encoded: bytes = status.SerializeToString()
        return encoded
    body: dict[str, Any] = json_format.MessageToDict(status)
    body.update(error.body())
    return orjson.dumps(body)
