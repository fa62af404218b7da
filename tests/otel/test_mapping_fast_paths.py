"""The mapper's shortcuts give what the general code gives: string attributes read without `WhichOneof` (an
empty string, zero, false and the other kinds still read exactly), ids compared with zero bytes, and a message of
one text part converted directly."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from pilothouse.otel.anyvalue import add_attributes, attributes_dict
from pilothouse.otel.genai_map import BadSpan, span_ids
from pilothouse.otel.messages import from_otel


def test_attribute_values_of_every_kind() -> None:
    span = Span()
    values: dict[str, Any] = {
        "s": "text",
        "empty": "",
        "zero": 0,
        "n": -7,
        "f": 0.0,
        "g": 2.5,
        "no": False,
        "yes": True,
        "list": ["a", "", 1],
        "kv": {"k": "v", "z": 0},
    }
    add_attributes(span.attributes, values)
    span.attributes.add(key="b").value.bytes_value = b"\x01\xff"
    span.attributes.add(key="unset")
    got = attributes_dict(span.attributes)
    assert got == {**values, "b": "01ff", "unset": None}
    assert type(got["zero"]) is int and type(got["f"]) is float and type(got["no"]) is bool


def _span(trace_id: bytes, span_id: bytes, parent: bytes = b"") -> Span:
    return Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="s")


def test_span_ids() -> None:
    assert span_ids(_span(b"\x01" * 16, b"\x02" * 8, b"\x03" * 8)) == ("01" * 16, "02" * 8, "03" * 8)
    assert span_ids(_span(b"\x01" * 16, b"\x02" * 8, bytes(8)))[2] is None  # an all-zero parent: a root span
    for bad in (_span(bytes(16), b"\x02" * 8), _span(b"\x01" * 15, b"\x02" * 8), _span(b"\x01" * 16, bytes(8))):
        with pytest.raises(BadSpan):
            span_ids(bad)
    with pytest.raises(BadSpan, match="parentSpanId"):
        span_ids(_span(b"\x01" * 16, b"\x02" * 8, b"\x03" * 3))


@pytest.mark.parametrize(
    "message, ours",
    [
        ({"role": "user", "parts": [{"type": "text", "content": "hi"}]}, {"role": "user", "content": "hi"}),
        (
            {"role": "user", "name": "bo", "parts": [{"type": "text", "content": "hi"}], "finish_reason": "stop"},
            {"role": "user", "content": "hi", "name": "bo"},
        ),
        ({"role": "user", "parts": [{"type": "text", "content": {"a": 1}}]}, {"role": "user", "content": '{"a": 1}'}),
        ({"parts": [{"type": "text", "content": "x"}]}, {"role": None, "content": "x"}),
        (
            {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
            {"role": "user", "content": "ab"},
        ),
        ({"role": "user", "parts": [{"type": "blob", "content": "b"}]}, None),  # kept as it is
    ],
)
def test_messages(message: dict[str, Any], ours: dict[str, Any] | None) -> None:
    assert from_otel(message) == (message if ours is None else ours)
