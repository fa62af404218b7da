"""Exact dense search with NumPy: cosine against every allowed row, the filter applied as a mask first.

The default for small collections (and the fallback of HNSW when a filter lets few rows through): one matrix
product over the rows the filter allows, so a filtered search returns the best k matching chunks, exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pilothouse.rag.index.columns import BoolArray, SlotArray
from pilothouse.rag.index.table import ChunkTable
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit

# Below this share of allowed rows, scoring only those rows (a gather) beats scoring all and masking.
_GATHER_SHARE = 0.25


def top_k_slots(table: ChunkTable, query: FloatArray, k: int, allowed: BoolArray) -> tuple[SlotArray, FloatArray]:
    """The k best allowed slots and their cosines, best first (ties: lower slot first)."""
    capacity = table.capacity
    count = int(np.count_nonzero(allowed))
    if count == 0 or capacity == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if count < capacity * _GATHER_SHARE:
        slots = np.flatnonzero(allowed).astype(np.int64)
        scores = table.vectors[slots] @ query
    else:
        all_scores = table.vectors[:capacity] @ query
        slots = np.flatnonzero(allowed).astype(np.int64)
        scores = all_scores[slots]
    if k < scores.size:
        best = np.argpartition(-scores, k - 1)[:k]
        slots, scores = slots[best], scores[best]
    order = np.lexsort((slots, -scores))
    return slots[order], scores[order].astype(np.float32, copy=False)


def exact_search(table: ChunkTable, query: FloatArray, k: int, allowed: BoolArray) -> list[VectorHit]:
    slots, scores = top_k_slots(table, query, k, allowed)
    return [table.hit(int(s), min(1.0, max(-1.0, float(v)))) for s, v in zip(slots, scores, strict=True)]


class ExactBackend:
    """Dense search by `exact_search` over the composite's table; nothing of its own to keep."""

    kind = "exact"

    def written(self, table: ChunkTable, slots: list[int]) -> None:
        pass

    def removed(self, table: ChunkTable, slots: list[int], ids: list[str]) -> None:
        pass

    def cleared(self, table: ChunkTable) -> None:
        pass

    def search(self, table: ChunkTable, query: FloatArray, k: int, where: Filter | None) -> list[VectorHit]:
        return exact_search(table, query, k, table.allowed(where))

    def save(self, directory: Path | None) -> None:
        pass

    def close(self) -> None:
        pass

    def drop(self) -> None:
        pass
