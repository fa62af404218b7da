"""Classifying upstream failures into ProviderError kinds: HTTP statuses and error bodies (OpenAI, Anthropic,
FastAPI or plain text), errors sent inside a stream, and transport exceptions; plus `Retry-After` parsing.

Messages carry the upstream's own words with credentials redacted (an upstream may quote the request's
headers back).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from pilothouse.gateway.providers.base import ErrorKind, ProviderError
from pilothouse.gateway.providers.redact import redact

MAX_ERROR_BODY = 64 * 1024
"""Bytes of a failed response's body read for its message."""

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
    message, err_type, code = _error_fields(body[:MAX_ERROR_BODY])
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
