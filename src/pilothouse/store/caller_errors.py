"""Whose fault a failed call was: the prompt version's, or the caller's.

A call refused for a caller mistake (a 422 for a missing template variable, a 400 for a bad parameter, a
401/403/404) says nothing about the prompt version: counting it as the version's error lets a client bug
trip an `error_rate` canary or show a version at a 57% error rate. The gateway records every refusal on a
span as `http.response.status_code` and `error.type` (`server/gateway_asgi.py`, `prompts/testing/gateway_executor.py`).

A caller error is a 4xx other than 429 (rate limits and exhausted budgets are load, not mistakes, and hit both
arms alike) and other than the upstream's 400s, which a version can cause itself (a longer prompt that
exceeds the context window, a parameter the model refuses).

The rule lives with the store because the rollups count caller errors as traces are written
(`store/rollups.py`); `prompts/rollout/outcomes.py` applies it to rows read back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


def ended_by_caller(trace_status: str, failed_span_attributes: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a trace is a failed one that a caller mistake ended: any of its failed spans says so."""
    if trace_status != "error":
        return False
    return any(is_caller_error(a.get(STATUS_ATTR), a.get(ERROR_TYPE_ATTR)) for a in failed_span_attributes)
