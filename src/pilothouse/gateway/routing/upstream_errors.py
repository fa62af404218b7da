"""The one mapping from an upstream failure (`ProviderError`) to the API error a caller sees.

It lives in the routing package because routing makes most of these errors and owns `DeadlineExceeded`; the
prepare stage (a tokenizer's refusal) and the embeddings call use it too.
"""

from __future__ import annotations

from pilothouse.errors import ApiError, InvalidRequest, RateLimited, UpstreamError, UpstreamTimeout
from pilothouse.gateway.providers.base import ProviderError
from pilothouse.gateway.providers.redact import redact
from pilothouse.gateway.routing.deadline import DeadlineExceeded


def provider_error_to_api(exc: ProviderError, deployment: str) -> ApiError:
    """Map an upstream failure to the status a caller should see, keeping the upstream's reason with any
    credential in it redacted (every provider's error passes here before it reaches a caller or a trace)."""
    reason = redact(f"upstream {deployment}: {exc.message}")
    if exc.kind == "rate_limit":
        headers = {"retry-after": str(max(1, round(exc.retry_after)))} if exc.retry_after else {}
        return RateLimited(reason, code="upstream_rate_limited", headers=headers)
    if isinstance(exc, DeadlineExceeded):  # a stream cut by the call deadline after its first chunk
        return UpstreamTimeout(exc.message, code="deadline_exceeded", headers={"x-should-retry": "false"})
    if exc.kind == "timeout":
        return UpstreamTimeout(reason, code="upstream_timeout")
    if exc.kind == "context_window":
        return InvalidRequest(reason, code="context_length_exceeded", param="messages")
    if exc.kind == "bad_request":
        return InvalidRequest(reason, code="upstream_bad_request")
    if exc.kind == "auth":
        return UpstreamError(f"{reason} (check the deployment's API key)", code="upstream_auth_failed")
    return UpstreamError(reason, code="upstream_unavailable" if exc.kind == "unavailable" else "upstream_error")
