"""HNSW dense search with `usearch`, over the slots of a `ChunkTable`, persisted next to it.

The graph holds each live slot's vector under the slot number as its key (cosine metric), stored as float16
(`GRAPH_DTYPE`): half the memory of float32 and a cheaper walk (fewer bytes per distance), while the table
keeps the float32 unit vectors. The graph only nominates candidates: their scores are recomputed exactly
from the table (one small matrix-vector product) and they are ranked by those, so a hit's score is its exact
cosine, the same as exact search would give, and float16 rounding cannot reorder the results (recall@10
against exact search: bench/rag_speed.py). A graph saved by an older version as float32 loads and searches
as it is.

usearch's Python API has no filtered search, so a filtered query works in two ways, both giving k matches
when k exist:
- a selective filter (few allowed rows, or a small share of the collection) is answered exactly over the
  allowed rows (`exact.top_k_slots` on a gather: fast because there are few);
- otherwise the graph is asked for more candidates than k in proportion to how many rows the filter rejects
  (k / share, half as many again), the rejected ones are dropped, and while fewer than k remain the request
  doubles; past half the collection it gives up on the graph and answers exactly.
So a filter never makes a search return fewer than k matches, and a row the filter rejects is never scored
into the results; they are approximate in the same way as an unfiltered HNSW search.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pilothouse.rag.index.columns import BoolArray, SlotArray
from pilothouse.rag.index.exact import exact_search
from pilothouse.rag.index.table import ChunkTable
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit

if TYPE_CHECKING:
    from usearch.index import Index

GRAPH_FILE = "hnsw.usearch"
GRAPH_DTYPE = "f16"
EXACT_BELOW_ROWS = 4096  # a filter allowing at most this many rows: exact over those rows
EXACT_BELOW_SHARE = 0.02  # ... or at most this share of the collection
_OVERSAMPLE = 1.5


def _index_class() -> type[Index]:
    """usearch's `Index`, imported on first use. onnxruntime (the MiniLM embedder) is imported first when it is
    installed: importing it after usearch crashes the process (SIGSEGV; usearch 2.26, onnxruntime 1.32), and
    only this order is safe whichever of the two the process needs next."""
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401

    from usearch.index import Index

    return Index


def _threads(batch: int) -> int:
    """usearch workers for adding a batch: every core for bulk loads, one for small batches (no start-up cost)."""
    return 0 if batch >= 2048 else 1


class HnswGraph:
    """A usearch HNSW graph keyed by slot (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        *,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 128,
        dtype: str = GRAPH_DTYPE,
    ):
        self.dim = dim
        self.dtype = dtype
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search
        self.graph = self._empty()

    def _empty(self) -> Index:
        return _index_class()(
            ndim=self.dim,
            metric="cos",
            dtype=self.dtype,
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )

    def __len__(self) -> int:
        return len(self.graph)

    def add_slots(self, table: ChunkTable, slots: list[int]) -> None:
        if not slots:
            return
        keys = np.asarray(slots, dtype=np.uint64)
        present = np.asarray(self.graph.contains(keys), dtype=np.bool_).reshape(-1)
        if present.any():
            self.graph.remove(keys[present])
        self.graph.add(keys, table.vectors[np.asarray(slots, dtype=np.int64)], threads=_threads(len(slots)))

    def remove_slots(self, slots: list[int]) -> None:
        if slots:
            self.graph.remove(np.asarray(slots, dtype=np.uint64))

    def fill(self, table: ChunkTable) -> None:
        """Replace the graph with every live slot of the table."""
        self.graph = self._empty()
        slots = table.live_slots()
        if slots.size:
            self.graph.add(slots.astype(np.uint64), table.vectors[slots], threads=_threads(int(slots.size)))

    def search(self, table: ChunkTable, query: FloatArray, k: int, allowed: BoolArray) -> list[VectorHit]:
        total = len(table)
        count = int(np.count_nonzero(allowed))
        if count == 0:
            return []
        if count < total and (count <= EXACT_BELOW_ROWS or count <= total * EXACT_BELOW_SHARE):
            return exact_search(table, query, k, allowed)
        want = min(count, k)
        share = count / max(total, 1)
        ask = min(total, k if count == total else max(k, math.ceil(k / share * _OVERSAMPLE) + 8))
        while True:
            matches = self.graph.search(query, ask, threads=1)
            keys = np.asarray(matches.keys, dtype=np.int64)
            keys = keys[keys < allowed.size]
            keys = keys[allowed[keys]]
            if keys.size >= want:
                return _ranked(table, query, keys, k)
            if ask >= total // 2:
                return exact_search(table, query, k, allowed)
            ask = min(total, ask * 2)

    def save(self, directory: Path) -> None:
        self.graph.save(str(directory / GRAPH_FILE))

    def load(self, directory: Path, table: ChunkTable) -> bool:
        """Load the graph saved with this table; False (and an empty graph) when missing or out of step."""
        path = directory / GRAPH_FILE
        if not path.exists():
            return False
        try:
            graph = self._empty()
            graph.load(str(path))
        except (OSError, RuntimeError, ValueError):
            return False
        if len(graph) != len(table) or graph.ndim != self.dim:
            return False
        self.graph = graph
        return True


def _ranked(table: ChunkTable, query: FloatArray, keys: SlotArray, k: int) -> list[VectorHit]:
    """The k best of the graph's candidate slots by their exact cosine (the table's float32 unit vectors), best
    first; ties: lower slot first, as in exact search."""
    scores = table.vectors[keys] @ query
    if k < keys.size:
        best = np.argpartition(-scores, k - 1)[:k]
        keys, scores = keys[best], scores[best]
    order = np.lexsort((keys, -scores))
    return [table.hit(int(keys[i]), min(1.0, max(-1.0, float(scores[i])))) for i in order]


class HnswBackend:
    """Dense search always through the HNSW graph (index kind `hnsw`)."""

    kind = "hnsw"

    def __init__(self, table: ChunkTable, directory: Path | None) -> None:
        self.hnsw = HnswGraph(table.dim)
        if directory is None or not self.hnsw.load(directory, table):
            self.hnsw.fill(table)

    def written(self, table: ChunkTable, slots: list[int]) -> None:
        self.hnsw.add_slots(table, slots)

    def removed(self, table: ChunkTable, slots: list[int], ids: list[str]) -> None:
        self.hnsw.remove_slots(slots)

    def cleared(self, table: ChunkTable) -> None:
        self.hnsw.fill(table)

    def search(self, table: ChunkTable, query: FloatArray, k: int, where: Filter | None) -> list[VectorHit]:
        return self.hnsw.search(table, query, k, table.allowed(where))

    def save(self, directory: Path | None) -> None:
        if directory is not None:
            self.hnsw.save(directory)

    def close(self) -> None:
        pass

    def drop(self) -> None:
        pass
