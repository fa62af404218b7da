"""Maximal marginal relevance: pick chunks that are relevant to the query but not near-copies of each other.

Carbonell and Goldstein (1998): repeatedly take the candidate maximising
`lam * relevance - (1 - lam) * max similarity to the chunks already taken`. `lam` = 1 is plain ranking,
`lam` = 0 pure diversity. Relevance is the candidate's cosine similarity to the query; similarity between
candidates is the cosine of their vectors (the chunk vectors the store keeps).
"""

from __future__ import annotations

import numpy as np

from pilothouse.vectors.protocol import FloatArray


def mmr(query: FloatArray, vectors: FloatArray, *, k: int, lam: float = 0.5) -> list[int]:
    """The row numbers of `vectors` (one candidate per row) in MMR order, at most `k` of them."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError("the MMR trade-off lambda must be between 0 and 1")
    if k < 1 or len(vectors) == 0:
        return []
    unit = _unit(np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))
    q = _unit(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
    relevance = unit @ q
    pairwise = unit @ unit.T
    chosen: list[int] = []
    # The largest similarity of each candidate to anything chosen so far (nothing chosen: no penalty).
    redundancy = np.full(len(unit), -np.inf, dtype=np.float32)
    available = np.ones(len(unit), dtype=bool)
    for _ in range(min(k, len(unit))):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = lam * relevance - (1.0 - lam) * penalty
        value = np.where(available, value, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[best])
    return chosen


def _unit(rows: FloatArray) -> FloatArray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out: FloatArray = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return out
