"""Identifiers: prefixed random ids for rows, W3C-sized hex ids for traces and spans."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A readable, unguessable row id such as `proj_3f9c1a2b4d5e6f70`."""
    return f"{prefix}_{secrets.token_hex(8)}"


def new_trace_id() -> str:
    """32 hex characters, the W3C trace-context / OpenTelemetry trace id size."""
    return secrets.token_hex(16)


def new_span_id() -> str:
    """16 hex characters, the OpenTelemetry span id size."""
    return secrets.token_hex(8)
