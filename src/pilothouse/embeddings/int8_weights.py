"""Symmetric int8 weights, one scale per output channel, for the int8 variant of the encoder graph.

A torch Linear's weight, transposed to (in, out) for `x W`, becomes int8 values q and a float32 scale per
column with W[:, j] ~ q[:, j] * scale[j], scale[j] = max |W[:, j]| / 127 (zero point 0, the full signed
range). ONNX Runtime's `DynamicQuantizeMatMul` multiplies such weights by activations it quantizes per call
(uint8, one scale and zero point per tensor), which AVX-512 VNNI and AVX-VNNI run as u8 x s8 dot products.
Computed in NumPy from the shipped fp32 weights when the encoder loads: nothing is downloaded or cached.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pilothouse.embeddings.types import FloatArray

Int8Array = npt.NDArray[np.int8]

_LEVELS = 127.0


def quantize_columns(weight: FloatArray) -> tuple[Int8Array, FloatArray]:
    """(in, out) float weights -> (in, out) int8 and (out,) float32 scales, rounding to nearest."""
    w = np.asarray(weight, dtype=np.float32)
    peak = np.abs(w).max(axis=0)
    scale = (np.where(peak > 0, peak, np.float32(1.0)) / np.float32(_LEVELS)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -_LEVELS, _LEVELS).astype(np.int8)
    return np.ascontiguousarray(q), scale


def dequantize_columns(q: Int8Array, scale: FloatArray) -> FloatArray:
    """The float weights `quantize_columns` stands for (for tests and error bounds)."""
    result: FloatArray = q.astype(np.float32) * scale
    return result
