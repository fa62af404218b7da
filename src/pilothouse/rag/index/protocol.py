"""One collection's indexes, kept in step: the dense vectors (exact, HNSW or Milvus) and BM25 keywords.

Ingestion writes through `upsert` and `remove`; retrieval reads through `dense` and `keyword`. The SQL store
holds the record of every chunk (text, vector, metadata); an index is derived from it and can be rebuilt with
`rebuild`. Both searches filter inside the index (`where`, usually an identity's access filter): a filtered
search returns the best k matching chunks, never fewer because others were filtered out afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from pilothouse.rag.types import IndexedChunk
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit


class RagIndex(Protocol):
    """A collection's dense and keyword indexes (see the module docstring)."""

    @property
    def kind(self) -> str:
        """What serves dense search now: `exact`, `hnsw` or `milvus`."""
        ...

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Add chunks, replacing any already held under the same ids, in both indexes."""
        ...

    def remove(self, ids: Iterable[str]) -> int:
        """Drop these chunk ids from both indexes; returns how many were held."""
        ...

    def dense(self, vector: FloatArray, *, k: int, where: Filter | None = None) -> list[VectorHit]:
        """The k nearest matching chunks by cosine similarity, best first (hits carry text and metadata)."""
        ...

    def keyword(self, query: str, *, k: int, where: Filter | None = None) -> list[VectorHit]:
        """The k best matching chunks by BM25 (score: the BM25 score), best first; [] when no term matches."""
        ...

    def rebuild(self, chunks: Iterable[IndexedChunk]) -> None:
        """Replace everything with these chunks (after a re-embed, or to repair a lost index file)."""
        ...

    def __len__(self) -> int:
        """Chunks held."""
        ...

    def close(self) -> None:
        """Persist what needs persisting and release files or connections."""
        ...
