"""The embedded default (index kind `auto`): exact NumPy search while a collection is small, HNSW above a size
threshold, switching as the collection grows or shrinks.

Exact search over up to ~20k vectors of 384 dimensions costs a few milliseconds and is always right, so a
graph only pays off above that. When the collection reaches `threshold` chunks the graph is built from the
table in one batch (usearch adds in parallel) and kept in step from then on; when it falls below half the
threshold the graph is dropped (the gap keeps a collection hovering near the threshold from rebuilding again
and again). The threshold is the collection setting `hnsw_threshold` (default `DEFAULT_THRESHOLD`).
"""

from __future__ import annotations

from pathlib import Path

from pilothouse.rag.index.exact import exact_search
from pilothouse.rag.index.hnsw import GRAPH_FILE, HnswGraph
from pilothouse.rag.index.table import ChunkTable
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit

DEFAULT_THRESHOLD = 20_000


class AutoBackend:
    """Exact below `threshold` chunks, HNSW at or above it (see the module docstring)."""

    def __init__(self, table: ChunkTable, directory: Path | None, *, threshold: int = DEFAULT_THRESHOLD) -> None:
        if threshold < 2:
            raise ValueError(f"hnsw_threshold must be at least 2, got {threshold}")
        self.threshold = threshold
        self.hnsw: HnswGraph | None = None
        if len(table) >= threshold:
            graph = HnswGraph(table.dim)
            if directory is None or not graph.load(directory, table):
                graph.fill(table)
            self.hnsw = graph

    @property
    def kind(self) -> str:
        return "exact" if self.hnsw is None else "hnsw"

    def written(self, table: ChunkTable, slots: list[int]) -> None:
        if self.hnsw is not None:
            self.hnsw.add_slots(table, slots)
        elif len(table) >= self.threshold:
            self.hnsw = HnswGraph(table.dim)
            self.hnsw.fill(table)

    def removed(self, table: ChunkTable, slots: list[int], ids: list[str]) -> None:
        if self.hnsw is None:
            return
        if len(table) < self.threshold // 2:
            self.hnsw = None
        else:
            self.hnsw.remove_slots(slots)

    def cleared(self, table: ChunkTable) -> None:
        self.hnsw = None

    def search(self, table: ChunkTable, query: FloatArray, k: int, where: Filter | None) -> list[VectorHit]:
        allowed = table.allowed(where)
        if self.hnsw is None:
            return exact_search(table, query, k, allowed)
        return self.hnsw.search(table, query, k, allowed)

    def save(self, directory: Path | None) -> None:
        if directory is None:
            return
        if self.hnsw is not None:
            self.hnsw.save(directory)
        else:
            (directory / GRAPH_FILE).unlink(missing_ok=True)

    def close(self) -> None:
        pass

    def drop(self) -> None:
        pass
