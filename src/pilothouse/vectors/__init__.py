"""Vector indexes: the `VectorIndex` protocol and its implementations (the semantic cache's, in memory)."""

from pilothouse.vectors.memory import MemoryVectorIndex
from pilothouse.vectors.protocol import DimensionMismatch, FloatArray, VectorHit, VectorIndex, VectorItem

__all__ = ["DimensionMismatch", "FloatArray", "MemoryVectorIndex", "VectorHit", "VectorIndex", "VectorItem"]
