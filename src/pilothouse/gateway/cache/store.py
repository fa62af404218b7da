"""The storage seam of the caches: a small protocol every backend implements (memory, Redis), checked by one
conformance suite (tests/gateway/cache/test_store_conformance.py).

Two kinds of data:
- entries: opaque bytes under (namespace, key) with a time to live; the exact cache and the answers a
  semantic hit points at;
- vectors: per partition, unit-length embeddings of cached questions, each naming the entry key it answers,
  the text it was computed from (for the contrast checks) and when it expires. `search_vectors` returns the best
  matches above a similarity; `refresh` brings a replica's view of a partition up to date with what other
  replicas added (a no-op where there is one process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pilothouse.vectors import FloatArray, VectorHit, VectorItem


@dataclass(frozen=True, slots=True)
class VectorRecord:
    key: str  # the entry key this vector's question is answered by
    text: str  # the question, for the contrast checks
    vector: FloatArray  # unit length, float32
    expires_at: float  # epoch seconds

    def item(self) -> VectorItem:
        """The record as a vector index item (its id is the entry key)."""
        return VectorItem(id=self.key, vector=self.vector, text=self.text, expires_at=self.expires_at)


@dataclass(frozen=True, slots=True)
class VectorMatch:
    key: str
    text: str
    score: float  # cosine similarity

    @classmethod
    def from_hit(cls, hit: VectorHit) -> VectorMatch:
        return cls(key=hit.id, text=hit.text, score=hit.score)


class CacheStore(Protocol):
    """Where cached answers and the semantic index live."""

    name: str  # "memory" or "redis", for traces and logs

    async def get(self, namespace: str, key: str) -> bytes | None:
        """The entry, or None when absent or expired."""
        ...

    async def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        """Store (or replace) an entry for `ttl_s` seconds."""
        ...

    async def delete(self, namespace: str, key: str) -> None: ...

    async def add_vector(self, partition: str, record: VectorRecord) -> None:
        """Add a question's embedding to a partition of the semantic index."""
        ...

    async def refresh(self, partition: str) -> None:
        """Make vectors other replicas added visible to `search_vectors` here."""
        ...

    def search_vectors(self, partition: str, vector: FloatArray, *, limit: int, min_score: float) -> list[VectorMatch]:
        """Up to `limit` unexpired matches with similarity >= `min_score`, best first, one per entry key.
        Synchronous: it runs on this replica's copy of the partition (see `refresh`)."""
        ...

    async def aclose(self) -> None: ...
