"""The vector index seam: store embeddings under ids, find the nearest ones to a query by cosine similarity.

Every implementation passes one conformance suite (tests/vectors/test_conformance.py). The semantic cache
uses `MemoryVectorIndex` (vectors/memory.py); retrieval adds others behind the same protocol.

Semantics every implementation keeps:
- `partition` names an isolated set of vectors (the cache partitions by request context); a search sees
  only its own partition. The default partition is `""`.
- `add` appends: an id may hold several vectors (a question stored twice, a document's chunks), and a search
  returns each id once, with the score of its best vector. To replace an id's vectors, `remove` it first.
- Scores are cosine similarities in [-1, 1]; vectors need not be unit length (a zero vector scores 0).
- Every vector in an index has the same dimension (given at construction or set by the first vector added);
  another one is a `DimensionMismatch`.
- Ids with equal scores come in no promised order.
- An item past its `expires_at` (epoch seconds) is never found; the index drops it when convenient, and
  `len` may count it until then.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pilothouse.vectors.filters import Filter

FloatArray = npt.NDArray[np.float32]


class DimensionMismatch(ValueError):
    """A vector whose dimension differs from the index's."""

    def __init__(self, got: int, expected: int) -> None:
        super().__init__(f"vector of dimension {got} does not fit an index of dimension {expected}")
        self.got = got
        self.expected = expected


@dataclass(frozen=True, slots=True)
class VectorItem:
    """One vector to store."""

    id: str  # what a hit names (the cache: the entry key the question is answered by)
    vector: FloatArray  # any non-zero length; float32 or convertible
    text: str = ""  # what the vector was computed from, returned with hits
    metadata: Mapping[str, Any] | None = None  # returned with hits as given
    expires_at: float = math.inf  # epoch seconds; never found after


@dataclass(frozen=True, slots=True)
class VectorHit:
    """One search result: an id with the best score among its vectors, and that vector's text and metadata."""

    id: str
    score: float  # cosine similarity
    text: str = ""
    metadata: Mapping[str, Any] | None = None


class VectorIndex(Protocol):
    """Vectors by id in isolated partitions, searched by cosine similarity (see the module docstring)."""

    def add(self, items: Iterable[VectorItem], *, partition: str = "") -> None:
        """Append vectors to a partition (created on first use). Raises `DimensionMismatch`, or ValueError for
        a vector with NaN or infinite values; nothing of a batch is added when one of its items is refused."""
        ...

    def remove(self, ids: Iterable[str], *, partition: str = "") -> int:
        """Drop every vector of these ids from the partition; returns how many vectors went."""
        ...

    def search(
        self,
        query: FloatArray,
        *,
        k: int,
        partition: str = "",
        min_score: float = -math.inf,
        where: Filter | None = None,
    ) -> list[VectorHit]:
        """Up to `k` (>= 1) unexpired ids with score >= `min_score`, best first, each id once. `where` filters
        inside the search by the items' metadata (see vectors/filters.py): only matching vectors are ranked,
        so k matching ids come back when k exist. An unknown or empty partition gives []; a query of the wrong
        dimension raises `DimensionMismatch`."""
        ...

    def clear(self) -> None:
        """Drop every vector of every partition."""
        ...

    def __len__(self) -> int:
        """Vectors held, over every partition."""
        ...
