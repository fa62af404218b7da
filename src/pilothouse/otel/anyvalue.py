"""OTLP `AnyValue` and `KeyValue` lists to Python values and back.

Attribute values are scalars, arrays or key-value lists; bytes become hex text (JSON has no bytes). Both
directions are iterative in spirit but bounded by the wire format's nesting, which the body guard already caps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def to_python(value: AnyValue) -> Any:
    """The plain value of `value` (None when unset)."""
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return getattr(value, which)
    if which == "array_value":
        return [to_python(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: to_python(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """A `KeyValue` list as a dict; the last of repeated keys wins."""
    out: dict[str, Any] = {}
    for kv in attributes:
        value = kv.value
        text = value.string_value  # most attributes are non-empty strings: no WhichOneof (it costs more than this)
        if text:
            out[kv.key] = text
            continue
        which = value.WhichOneof("value")
        out[kv.key] = getattr(value, which) if which in _SCALARS else to_python(value)
    return out


def fill(target: AnyValue, value: Any) -> None:
    """Set `target` to `value` (str, bool, int, float, list, dict; anything else as its text)."""
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, list | tuple):
        array = target.array_value
        array.SetInParent()
        for item in value:
            fill(array.values.add(), item)
    elif isinstance(value, Mapping):
        kvlist = target.kvlist_value
        kvlist.SetInParent()
        for key, item in value.items():
            kv = kvlist.values.add()
            kv.key = str(key)
            fill(kv.value, item)
    elif value is not None:
        target.string_value = str(value)


def add_attributes(target: Any, attributes: Mapping[str, Any]) -> None:
    """Append `attributes` to a repeated `KeyValue` field (`span.attributes`, `resource.attributes`); None skipped."""
    for key, value in attributes.items():
        if value is None:
            continue
        kv = target.add()
        kv.key = key
        fill(kv.value, value)
