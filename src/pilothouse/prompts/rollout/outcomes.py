"""Caller mistakes among a prompt's failed traces, read back from the rows (the rule: `store/caller_errors.py`)."""

from __future__ import annotations

from sqlalchemy import Connection

from pilothouse.store.caller_errors import ERROR_TYPE_ATTR, STATUS_ATTR, VERSION_CAUSED_CODES, is_caller_error
from pilothouse.store.prompt_traces import TraceWindow, failed_span_attributes

__all__ = ["ERROR_TYPE_ATTR", "STATUS_ATTR", "VERSION_CAUSED_CODES", "caller_error_traces", "is_caller_error"]


def caller_error_traces(conn: Connection, window: TraceWindow) -> set[str]:
    """The ids of the window's error traces that a caller mistake ended."""
    return {
        trace_id
        for trace_id, attrs in failed_span_attributes(conn, window)
        if is_caller_error(attrs.get(STATUS_ATTR), attrs.get(ERROR_TYPE_ATTR))
    }
