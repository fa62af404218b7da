"""Just enough of the ONNX protobuf format to write a model: ModelProto and what it contains, as bytes.

The `onnx` package would do this through `onnx.helper`, but importing it costs ~0.5 s (its `ml_dtypes`
dependency) and ~30 MB on disk, for a graph of a few hundred nodes whose weights travel outside the
protobuf anyway. The messages below follow onnx/onnx.proto (proto2): field numbers are taken from it,
repeated scalars are written unpacked, and ONNX Runtime checks the result when it loads it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

# TensorProto.DataType
FLOAT = 1
INT8 = 3
INT32 = 6
INT64 = 7
_DATA_TYPES = {
    np.dtype(np.float32): FLOAT,
    np.dtype(np.int8): INT8,
    np.dtype(np.int32): INT32,
    np.dtype(np.int64): INT64,
}

# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_INTS = 1, 2, 3, 7

_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

AttributeValue = int | float | str | Sequence[int]


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields: negatives as 64-bit two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode("utf-8"))


def _float(field: int, value: float) -> bytes:
    return _varint((field << 3) | 5) + struct.pack("<f", value)


def _join(parts: Iterable[bytes]) -> bytes:
    return b"".join(parts)


def tensor(name: str, array: npt.NDArray[np.generic]) -> bytes:
    """TensorProto with its data inline (raw_data, little-endian)."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<")
    return _join(
        [
            *(_int(1, d) for d in array.shape),  # dims
            _int(2, _DATA_TYPES[array.dtype]),  # data_type
            _str(8, name),
            _bytes(9, array.astype(dtype, copy=False).tobytes()),  # raw_data
        ]
    )


def external_tensor(name: str, dtype: npt.DTypeLike, shape: Sequence[int], nbytes: int) -> bytes:
    """TensorProto whose data lives elsewhere: the session gets it with add_external_initializers."""
    entries = (("location", name), ("offset", "0"), ("length", str(nbytes)))
    return _join(
        [
            *(_int(1, d) for d in shape),
            _int(2, _DATA_TYPES[np.dtype(dtype)]),
            _str(8, name),
            *(_bytes(13, _str(1, key) + _str(2, value)) for key, value in entries),  # external_data
            _int(14, _EXTERNAL),  # data_location
        ]
    )


def attribute(name: str, value: AttributeValue) -> bytes:
    if isinstance(value, bool):
        raise TypeError(f"attribute {name}: booleans are ints in ONNX")
    if isinstance(value, int):
        body = _int(3, value) + _int(20, _ATTR_INT)
    elif isinstance(value, float):
        body = _float(2, value) + _int(20, _ATTR_FLOAT)
    elif isinstance(value, str):
        body = _str(4, value) + _int(20, _ATTR_STRING)
    else:
        body = _join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)
    return _str(1, name) + body


def node(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str,
    domain: str = "",
    attributes: dict[str, AttributeValue] | None = None,
) -> bytes:
    return _join(
        [
            *(_str(1, i) for i in inputs),
            *(_str(2, o) for o in outputs),
            _str(3, name),
            _str(4, op_type),
            *(_bytes(5, attribute(k, v)) for k, v in (attributes or {}).items()),
            _str(7, domain) if domain else b"",
        ]
    )


def value_info(name: str, elem_type: int, shape: Sequence[int | str]) -> bytes:
    """ValueInfoProto of a tensor; a str dimension is symbolic (dim_param)."""
    dims = _join(_bytes(1, _str(2, d) if isinstance(d, str) else _int(1, d)) for d in shape)
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def graph(
    name: str, nodes: Sequence[bytes], inputs: Sequence[bytes], outputs: Sequence[bytes], initializers: Sequence[bytes]
) -> bytes:
    return _join(
        [
            *(_bytes(1, n) for n in nodes),
            _str(2, name),
            *(_bytes(5, t) for t in initializers),
            *(_bytes(11, i) for i in inputs),
            *(_bytes(12, o) for o in outputs),
        ]
    )


def model(graph_bytes: bytes, opsets: dict[str, int], *, ir_version: int, producer: str) -> bytes:
    """ModelProto: `opsets` maps a domain ("" for the standard one) to its version."""
    return _join(
        [
            _int(1, ir_version),
            _str(2, producer),
            _bytes(7, graph_bytes),
            *(_bytes(8, (_str(1, d) if d else b"") + _int(2, v)) for d, v in opsets.items()),
        ]
    )
