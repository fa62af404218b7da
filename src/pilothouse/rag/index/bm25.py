"""BM25 keyword search over a `ChunkTable` with `bm25s`, kept in step with the vectors and filtered the same way.

bm25s builds a static index (a sparse matrix of per-document term scores), so the index is rebuilt from the
table's texts when the table changed since the last build (its `generation`), lazily on the next keyword
search: a batch of upserts costs one rebuild, not one per chunk. Each text is tokenised once (lower case,
English stop words removed, no stemming: results must not depend on an optional package) and its tokens are
kept per slot (as tuples, which the garbage collector stops tracking), so a rebuild only re-counts.

A search adds up the query terms' columns of that matrix (their postings: the work is proportional to how
many documents hold the terms, not to the collection), masks out the slots the filter does not allow, and
takes the best k with a positive score: pre-filtering, exact, the same scores as bm25s's `get_scores`.
"""

from __future__ import annotations

from typing import Any

import bm25s  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from pilothouse.rag.index.columns import BoolArray, SlotArray
from pilothouse.rag.index.table import ChunkTable
from pilothouse.vectors.protocol import VectorHit


def tokenize(texts: list[str]) -> list[tuple[str, ...]]:
    """bm25s tokens of each text (the same rules for chunks and queries)."""
    if not texts:
        return []
    tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
    return [tuple(row) for row in tokens]


class KeywordIndex:
    """BM25 over a table's live chunks (see the module docstring)."""

    def __init__(self, table: ChunkTable, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.table = table
        self.k1 = k1
        self.b = b
        self._tokens: dict[int, tuple[str, ...]] = {}
        self._retriever: Any = None
        self._slots: SlotArray = np.empty(0, dtype=np.int64)  # bm25s document number -> slot
        self._dense = True  # document number == slot (no free slot below the last live one): no gather
        self._built_generation = -1

    def written(self, slots: list[int]) -> None:
        """The table wrote these slots: tokenise their texts now (the index itself is rebuilt on demand)."""
        for slot, tokens in zip(slots, tokenize([self.table.texts[s] for s in slots]), strict=True):
            self._tokens[slot] = tokens

    def freed(self, slots: list[int]) -> None:
        for slot in slots:
            self._tokens.pop(slot, None)

    def search(self, query: str, k: int, allowed: BoolArray) -> list[VectorHit]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query_tokens = tokenize([query])[0] if query.strip() else []
        if not query_tokens or len(self.table) == 0:
            return []
        self._ensure_built()
        vocabulary = self._retriever.vocab_dict
        known = [vocabulary[token] for token in query_tokens if token in vocabulary]  # a repeated term counts again
        if not known:
            return []
        scores = self._scores(known)
        allowed_docs = allowed[: self._slots.size] if self._dense else allowed[self._slots]
        positions = np.flatnonzero((scores > 0) & allowed_docs)
        if positions.size == 0:
            return []
        picked = scores[positions]
        if k < positions.size:
            best = np.argpartition(-picked, k - 1)[:k]
            positions, picked = positions[best], picked[best]
        slots = self._slots[positions]
        order = np.lexsort((slots, -picked))
        return [self.table.hit(int(slots[i]), float(picked[i])) for i in order]

    def _scores(self, term_ids: list[int]) -> npt.NDArray[np.float64]:
        """Every document's BM25 score for the query's term ids: what bm25s's `get_scores` computes (a sum
        over the terms' postings), in one `bincount` instead of an `np.add.at` per term."""
        matrix = self._retriever.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        spans = [(int(indptr[t]), int(indptr[t + 1])) for t in term_ids]
        documents = np.concatenate([indices[a:b] for a, b in spans])
        weights = np.concatenate([data[a:b] for a, b in spans])
        summed = np.bincount(documents, weights=weights, minlength=int(matrix["num_docs"]))
        return np.asarray(summed, dtype=np.float64)  # float64 already (weights given): no copy

    def _ensure_built(self) -> None:
        if self._built_generation == self.table.generation and self._retriever is not None:
            return
        slots = self.table.live_slots()
        missing = [int(s) for s in slots if int(s) not in self._tokens]
        if missing:
            self.written(missing)
        corpus = [list(self._tokens[int(s)]) or [""] for s in slots]
        retriever = bm25s.BM25(k1=self.k1, b=self.b)
        retriever.index(corpus, show_progress=False)
        self._retriever = retriever
        self._slots = slots
        self._dense = bool(slots.size == 0 or slots[-1] == slots.size - 1)
        self._built_generation = self.table.generation
