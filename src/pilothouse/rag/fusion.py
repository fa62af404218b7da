"""Hybrid ranking: merge the ranked lists of several retrievers (dense, keyword) into one.

Two methods, chosen per query:
- reciprocal rank fusion (`rrf`): a chunk scores `sum(weight / (k + rank))` over the lists holding it. It uses
  ranks only, so BM25 scores (unbounded) and cosine similarities (in [-1, 1]) need no calibration. Cormack et
  al. (2009) use `k` = 60 and equal weights; the defaults here, `k` = 30 with the dense list weighted 3 to the
  keyword list's 1, were chosen on half of CISI's judged queries and checked on the other half, where they beat
  both retrievers alone and the textbook setting (bench/rag_quality.py, docs/benchmarks.md). Requests can set
  both.
- weighted score fusion (`weighted`): each list's scores are first normalised to a common scale (min-max to
  [0, 1], or z-scores), then a chunk scores `sum(weight * normalised score)`; a list that does not hold the
  chunk adds nothing (the floor of that list's scale).

Both keep, for every fused chunk, where it came from: each retriever's rank (1-based) and raw score, which
the retrieval span records.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pilothouse.vectors.protocol import VectorHit

FusionMethod = Literal["rrf", "weighted"]
Normalisation = Literal["minmax", "zscore"]
RRF_K = 30
RRF_WEIGHTS: Mapping[str, float] = {"dense": 3.0, "keyword": 1.0}
"""RRF's weights when a request names none (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class SourceRank:
    """A chunk's place in one retriever's list."""

    rank: int  # 1-based
    score: float  # the retriever's raw score (cosine similarity, BM25)


@dataclass(slots=True)
class FusedHit:
    """One chunk of the fused ranking."""

    id: str
    score: float
    text: str = ""
    metadata: Mapping[str, Any] | None = None
    sources: dict[str, SourceRank] = field(default_factory=dict)


def rrf(
    lists: Mapping[str, Sequence[VectorHit]], *, k: int = RRF_K, weights: Mapping[str, float] | None = None
) -> list[FusedHit]:
    """Reciprocal rank fusion of `lists` (retriever name -> hits, best first), best first."""
    if k < 0:
        raise ValueError("the RRF constant k must be >= 0")
    fused = _collect(lists)
    for hit in fused.values():
        hit.score = sum(_weight(weights, name) / (k + src.rank) for name, src in hit.sources.items())
    return _ordered(fused)


def weighted(
    lists: Mapping[str, Sequence[VectorHit]],
    *,
    weights: Mapping[str, float] | None = None,
    normalisation: Normalisation = "minmax",
) -> list[FusedHit]:
    """Weighted fusion of normalised scores (see the module docstring), best first."""
    fused = _collect(lists)
    scales = {name: _scale([h.score for h in hits], normalisation) for name, hits in lists.items()}
    for hit in fused.values():
        total = 0.0
        for name, src in hit.sources.items():
            total += _weight(weights, name) * scales[name](src.score)
        hit.score = total
    return _ordered(fused)


def fuse(
    lists: Mapping[str, Sequence[VectorHit]],
    *,
    method: FusionMethod = "rrf",
    weights: Mapping[str, float] | None = None,
    rrf_k: int = RRF_K,
    normalisation: Normalisation = "minmax",
) -> list[FusedHit]:
    """`rrf` or `weighted` by name (what retrieval settings and requests choose)."""
    if method == "rrf":
        return rrf(lists, k=rrf_k, weights=RRF_WEIGHTS if weights is None else weights)
    return weighted(lists, weights=weights, normalisation=normalisation)


def single(name: str, hits: Sequence[VectorHit]) -> list[FusedHit]:
    """One retriever's list in the fused shape (dense-only or keyword-only retrieval), scores kept."""
    return [
        FusedHit(h.id, h.score, h.text, h.metadata, {name: SourceRank(rank, h.score)})
        for rank, h in enumerate(hits, start=1)
    ]


def _weight(weights: Mapping[str, float] | None, name: str) -> float:
    return 1.0 if weights is None else float(weights.get(name, 0.0))


def _collect(lists: Mapping[str, Sequence[VectorHit]]) -> dict[str, FusedHit]:
    fused: dict[str, FusedHit] = {}
    for name, hits in lists.items():
        for rank, hit in enumerate(hits, start=1):
            into = fused.get(hit.id)
            if into is None:
                into = fused[hit.id] = FusedHit(hit.id, 0.0, hit.text, hit.metadata)
            into.sources.setdefault(name, SourceRank(rank, hit.score))  # an id listed twice: its best place
    return fused


def _ordered(fused: dict[str, FusedHit]) -> list[FusedHit]:
    # Ties (equal fused score) break on the best single rank, then id, so a ranking is reproducible.
    return sorted(fused.values(), key=lambda h: (-h.score, min(s.rank for s in h.sources.values()), h.id))


class _Scale:
    def __init__(self, shift: float, spread: float, clip: bool) -> None:
        self.shift, self.spread, self.clip = shift, spread, clip

    def __call__(self, score: float) -> float:
        value = (score - self.shift) / self.spread if self.spread > 0 else 1.0
        return min(max(value, 0.0), 1.0) if self.clip else value


def _scale(scores: list[float], normalisation: Normalisation) -> _Scale:
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        return _Scale(0.0, 1.0, normalisation == "minmax")
    if normalisation == "minmax":
        low, high = min(finite), max(finite)
        return _Scale(low, high - low, True)
    mean = statistics.fmean(finite)
    spread = statistics.pstdev(finite) if len(finite) > 1 else 0.0
    return _Scale(mean, spread, False)
