"""API errors with the OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.

Raise these anywhere in the core; the server turns them into the right status and body. Messages say
what to fix, because a person reads them.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status: int = 400
    type: str = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401
    type = "authentication_error"


class Forbidden(ApiError):
    status = 403
    type = "permission_error"


class NotFound(ApiError):
    status = 404
    type = "not_found_error"


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class Unprocessable(ApiError):
    status = 422


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"


class UpstreamError(ApiError):
    status = 502
    type = "api_error"


class UpstreamTimeout(ApiError):
    status = 504
    type = "api_error"
