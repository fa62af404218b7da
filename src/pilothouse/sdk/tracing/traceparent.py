"""The W3C `traceparent` header (https://www.w3.org/TR/trace-context/): `00-<trace id>-<parent id>-<flags>`.

Used in both directions: the SDK sends it on calls through the gateway, and the gateway reads it so its trace
joins the caller's. Only what version 00 defines is accepted; anything else parses to None (the header is then
ignored, as the specification asks), never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = "traceparent"
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A caller's position in a trace: the trace id (32 hex) and the id of the caller's span (16 hex)."""

    trace_id: str
    span_id: str
    sampled: bool = True

    def header(self) -> str:
        """The header value, version 00."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


def parse(value: str | None) -> TraceParent | None:
    """The header's trace and parent span, or None when it is missing or malformed.

    Upper-case hex, the all-zero ids and version ff are invalid; a version above 00 may carry more fields
    after the flags (kept forward compatible, as the specification says)."""
    if not value:
        return None
    match = _PATTERN.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    if version == "00" and len(value.strip()) != 55:
        return None
    return TraceParent(trace_id, span_id, sampled=bool(int(flags, 16) & 1))
