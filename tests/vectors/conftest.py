"""Unit vectors for the vector index tests (the cache tests use them too)."""

from __future__ import annotations

import numpy as np

from pilothouse.vectors import FloatArray


def unit(seed: int, dim: int = 384) -> FloatArray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def near(base: FloatArray, cosine: float, seed: int) -> FloatArray:
    """A unit vector with the given cosine similarity to `base`."""
    other = np.random.default_rng(seed).standard_normal(base.size).astype(np.float32)
    other -= other.dot(base) * base
    other /= np.linalg.norm(other)
    v = cosine * base + np.sqrt(1 - cosine**2) * other
    return (v / np.linalg.norm(v)).astype(np.float32)
