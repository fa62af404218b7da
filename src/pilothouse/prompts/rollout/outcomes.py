"""Whose fault a failed call was: the prompt version's, or the caller's.

A call refused for a caller mistake (a 422 for a missing template variable, a 400 for a bad parameter, a
401/403/404) says nothing about the prompt version: counting it as the version's error lets a client bug
trip an `error_rate` canary or show a version at a 57% error rate. The gateway records every refusal on a
span as `http.response.status_code` and `error.type` (`server/gateway_asgi.py`, `prompts/testing/gateway_executor.py`).

A caller error is a 4xx other than 429 (rate limits and exhausted budgets are load, not mistakes, and hit both
arms alike) and other than the upstream's 400s, which a version can cause itself (a longer prompt that
exceeds the context window, a parameter the model refuses).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from pilothouse.store.prompt_traces import TraceWindow, failed_span_attributes

STATUS_ATTR = "http.response.status_code"
ERROR_TYPE_ATTR = "error.type"
VERSION_CAUSED_CODES = frozenset({"upstream_bad_request", "context_length_exceeded"})


def is_caller_error(status_code: Any, error_type: Any) -> bool:
    """Whether a refusal with this status and error code was the caller's mistake (see the module)."""
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        return False
    if not 400 <= status_code < 500 or status_code == 429:
        return False
    return error_type not in VERSION_CAUSED_CODES


def caller_error_traces(conn: Connection, window: TraceWindow) -> set[str]:
    """The ids of the window's error traces that a caller mistake ended."""
    return {
        trace_id
        for trace_id, attrs in failed_span_attributes(conn, window)
        if is_caller_error(attrs.get(STATUS_ATTR), attrs.get(ERROR_TYPE_ATTR))
    }
