"""W3C traceparent parsing: what version 00 defines is read, anything else is ignored (None), never an error."""

from __future__ import annotations

import pytest

from pilothouse.sdk.tracing.traceparent import TraceParent, parse

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_round_trip() -> None:
    header = f"00-{TRACE}-{SPAN}-01"
    assert parse(header) == TraceParent(TRACE, SPAN, sampled=True)
    assert TraceParent(TRACE, SPAN).header() == header
    assert parse(f"00-{TRACE}-{SPAN}-00") == TraceParent(TRACE, SPAN, sampled=False)


def test_a_later_version_may_carry_more_fields() -> None:
    assert parse(f"01-{TRACE}-{SPAN}-01-extra") == TraceParent(TRACE, SPAN)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper-case hex
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{SPAN}-01",  # version ff is invalid
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}-{SPAN}-01",
    ],
)
def test_malformed_headers_are_ignored(value: str | None) -> None:
    assert parse(value) is None
