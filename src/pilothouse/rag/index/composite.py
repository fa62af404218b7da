"""`CompositeRagIndex`: the `RagIndex` of one collection, a dense backend and BM25 kept in step.

The composite owns the collection's `ChunkTable` (slots, texts, metadata, filter columns, unit vectors); BM25
(`KeywordIndex`) reads it, and the dense backend either reads it too (exact, HNSW, auto) or mirrors the chunks
into a server (Milvus). Every write goes to the table, then to the keyword index, then to the dense backend,
under one lock, so a search never sees one index ahead of the other.

Persistence: the table and the backend's own files live in the collection's folder under the data directory
(`<data_dir>/rag/<collection id>/`); `close()` (and `flush()`) write them when something changed. An index
whose files are missing or unreadable opens empty: compare `len(index)` with the store's chunk count and call
`rebuild` with the store's chunks (R1's ingestion does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from pilothouse.rag.index.bm25 import KeywordIndex
from pilothouse.rag.index.table import MANIFEST, ChunkTable
from pilothouse.rag.types import IndexedChunk
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit

_REBUILD_BATCH = 4096


class DenseBackend(Protocol):
    """What serves dense search for a composite (see exact.py, hnsw.py, auto.py, milvus.py)."""

    @property
    def kind(self) -> str: ...

    def written(self, table: ChunkTable, slots: list[int]) -> None:
        """The table (re)wrote these slots."""
        ...

    def removed(self, table: ChunkTable, slots: list[int], ids: list[str]) -> None:
        """The table freed these slots, which held these ids."""
        ...

    def cleared(self, table: ChunkTable) -> None:
        """Everything is about to be rewritten into `table` (a rebuild)."""
        ...

    def search(self, table: ChunkTable, query: FloatArray, k: int, where: Filter | None) -> list[VectorHit]:
        """The k best chunks matching `where` for a unit query vector, best first."""
        ...

    def save(self, directory: Path | None) -> None: ...

    def close(self) -> None: ...

    def drop(self) -> None:
        """Delete what the backend keeps outside the collection's folder (a Milvus collection)."""
        ...


class CompositeRagIndex:
    """One collection's dense and keyword indexes (see the module docstring)."""

    def __init__(self, table: ChunkTable, dense: DenseBackend, *, directory: Path | None) -> None:
        self.table = table
        self.keywords = KeywordIndex(table)
        self.backend = dense
        self.directory = directory
        self._lock = threading.RLock()
        self._saved_generation = table.generation
        self.saved_stamp = self.stamp_of(directory)  # the manifest as this object last read or wrote it

    @staticmethod
    def stamp_of(directory: Path | None) -> tuple[int, int] | None:
        """What identifies a save of the folder (the manifest's mtime and size); None when never saved."""
        if directory is None:
            return None
        try:
            info = (directory / MANIFEST).stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    @property
    def kind(self) -> str:
        return self.backend.kind

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        if not chunks:
            return
        with self._lock:
            slots = self.table.upsert(chunks)
            self.keywords.written(slots)
            self.backend.written(self.table, slots)

    def remove(self, ids: Iterable[str]) -> int:
        with self._lock:
            wanted = [chunk_id for chunk_id in dict.fromkeys(ids) if chunk_id in self.table.slot_of]
            slots = [self.table.slot_of[chunk_id] for chunk_id in wanted]
            self.table.remove(wanted)
            self.keywords.freed(slots)
            self.backend.removed(self.table, slots, wanted)
            return len(wanted)

    def dense(self, vector: FloatArray, *, k: int, where: Filter | None = None) -> list[VectorHit]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = self.table.query_vector(vector)  # DimensionMismatch / ValueError before anything else
        with self._lock:
            if len(self.table) == 0:
                return []
            return self.backend.search(self.table, query, k, where)

    def keyword(self, query: str, *, k: int, where: Filter | None = None) -> list[VectorHit]:
        with self._lock:
            return self.keywords.search(query, k, self.table.allowed(where))

    def rebuild(self, chunks: Iterable[IndexedChunk]) -> None:
        with self._lock:
            self.table.remove(list(self.table.slot_of))
            self.keywords.freed(list(range(self.table.capacity)))
            self.backend.cleared(self.table)
            batch: list[IndexedChunk] = []
            for chunk in chunks:
                batch.append(chunk)
                if len(batch) >= _REBUILD_BATCH:
                    self.upsert(batch)
                    batch = []
            self.upsert(batch)

    def __len__(self) -> int:
        return len(self.table)

    def flush(self) -> None:
        """Write the table and the backend's files if anything changed since the last write."""
        with self._lock:
            if self.directory is None or self.table.generation == self._saved_generation:
                return
            self.table.save(self.directory)
            self.backend.save(self.directory)
            self._saved_generation = self.table.generation
            self.saved_stamp = self.stamp_of(self.directory)

    def close(self) -> None:
        """Persist; the object stays usable (`open_rag_index` hands the same one to every caller)."""
        self.flush()

    def drop(self) -> None:
        """Forget everything, here and in the backend (the collection is being deleted)."""
        with self._lock:
            self.backend.drop()
            self.backend.close()
            self.table.remove(list(self.table.slot_of))
            self._saved_generation = self.table.generation
