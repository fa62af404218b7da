"""Retrieval over one collection for one identity: dense, keyword or hybrid, then thresholds, MMR and top k.

The steps of a query (each recorded on the `Retrieval`, which `rag/spans.py` turns into the retrieval span):
1. the query is embedded with the collection's model (a caller naming another model, or bringing a vector of
   another dimension, is refused: its vector would not be comparable with the stored ones);
2. each retriever (`dense`, `keyword`) returns its `candidates` best chunks, filtered inside the index by the
   caller's metadata filter AND the identity's access list (`Identity.acl_filter`), so a chunk the caller may
   not read is never a candidate;
3. hybrid mode fuses the lists (`rag/fusion.py`: RRF or weighted score fusion);
4. `min_score` drops what scores below it (the final score: cosine for dense, BM25 for keyword, the fused
   score for hybrid);
5. MMR (`mmr_lambda`) reorders for diversity, using the chunk vectors the caller can look up;
6. the first `k` are the result (a reranker, `rag/rerank.py`, may reorder them afterwards).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pilothouse.errors import InvalidRequest
from pilothouse.rag.fusion import RRF_K, FusedHit, FusionMethod, Normalisation, fuse, single
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.mmr import mmr
from pilothouse.rag.types import CollectionInfo, Identity
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
MAX_K = 100
MAX_CANDIDATES = 1000

QueryEmbedder = Callable[[str], FloatArray]
"""Embeds one query text with the collection's model."""
VectorLookup = Callable[[Sequence[str]], Mapping[str, FloatArray]]
"""Chunk id -> stored vector, for MMR (the SQL store keeps every chunk's vector)."""


@dataclass(frozen=True, slots=True)
class Query:
    """What to retrieve and how."""

    text: str
    k: int = 5
    mode: Mode = "hybrid"
    fusion: FusionMethod = "rrf"
    weights: Mapping[str, float] | None = None
    """Per retriever (`dense`, `keyword`); None: the fusion's defaults (`fusion.RRF_WEIGHTS`, equal for weighted)."""
    rrf_k: int = RRF_K
    normalisation: Normalisation = "minmax"
    candidates: int = 50
    """How many chunks each retriever returns before fusion (at least k)."""
    where: Filter | None = None
    """The caller's metadata filter (the access filter is added to it, never replaced by it)."""
    min_score: float | None = None
    mmr_lambda: float | None = None
    embedding_model: str | None = None
    """The model the caller embedded `vector` with, or expects the collection to use; must be the collection's."""
    vector: Sequence[float] | None = None
    """A query vector the caller computed (with `embedding_model`); None: the text is embedded here."""

    def check(self) -> None:
        """Raise InvalidRequest for parameters no retrieval can honour."""
        if not self.text.strip() and self.vector is None:
            raise InvalidRequest("the query is empty: give the text to search for", param="query")
        if self.mode not in MODES:
            raise InvalidRequest(f"mode must be one of {', '.join(MODES)}", param="mode")
        if not 1 <= self.k <= MAX_K:
            raise InvalidRequest(f"k must be between 1 and {MAX_K}", param="k")
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise InvalidRequest(f"candidates must be between 1 and {MAX_CANDIDATES}", param="candidates")
        if self.mmr_lambda is not None and not 0.0 <= self.mmr_lambda <= 1.0:
            raise InvalidRequest("mmr_lambda must be between 0 and 1", param="mmr_lambda")
        if self.rrf_k < 0:
            raise InvalidRequest("rrf_k must be >= 0", param="rrf_k")
        for name, weight in (self.weights or {}).items():
            if name not in ("dense", "keyword"):
                raise InvalidRequest(f"unknown retriever {name!r} in weights: use dense or keyword", param="weights")
            if not weight >= 0:
                raise InvalidRequest("weights must be >= 0", param="weights")
        if self.vector is not None and self.embedding_model is None:
            raise InvalidRequest("a query vector needs the embedding_model it was computed with", param="vector")


@dataclass(slots=True)
class Retrieval:
    """Everything a query did, for the answer and for its span."""

    query: Query
    collection: CollectionInfo
    identity: Identity
    candidates: dict[str, list[VectorHit]] = field(default_factory=dict)
    fused: list[FusedHit] = field(default_factory=list)
    ranked: list[FusedHit] = field(default_factory=list)
    """The fused ranking after the threshold and MMR, before the cut to k (what a reranker reorders)."""
    hits: list[FusedHit] = field(default_factory=list)
    below_threshold: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    rerank: dict[str, Any] | None = None
    """What a rerank step did (`rag/rerank.py`): its model, scores by chunk id, or why it kept the order."""


def check_model(collection: CollectionInfo, query: Query) -> None:
    """Refuse a query embedded with (or expecting) another model than the collection's."""
    if query.embedding_model is not None and query.embedding_model != collection.embedding_model:
        raise InvalidRequest(
            f"collection {collection.name!r} is embedded with {collection.embedding_model!r}, not "
            f"{query.embedding_model!r}: query with its model (or re-embed the collection with "
            "`pilothouse rag reembed`)",
            code="embedding_model_mismatch",
            param="embedding_model",
        )
    if query.vector is not None and len(query.vector) != collection.dimensions:
        raise InvalidRequest(
            f"the query vector has {len(query.vector)} dimensions; collection {collection.name!r} holds "
            f"{collection.dimensions}-dimensional vectors of {collection.embedding_model!r}",
            code="embedding_model_mismatch",
            param="vector",
        )


def retrieve(
    index: RagIndex,
    collection: CollectionInfo,
    identity: Identity,
    query: Query,
    *,
    embed: QueryEmbedder,
    vectors: VectorLookup | None = None,
) -> Retrieval:
    """Run `query` over `index` for `identity` (see the module docstring)."""
    query.check()
    check_model(collection, query)
    if identity.project_id != collection.project_id:
        raise InvalidRequest("the collection belongs to another project", code="wrong_project")
    out = Retrieval(query, collection, identity)
    where = identity.acl_filter(query.where)
    pool = max(query.candidates, query.k)
    query_vector: FloatArray | None = None
    if query.mode in ("dense", "hybrid"):
        started = time.perf_counter()
        query_vector = _query_vector(query, embed)
        out.timings_ms["embed"] = _ms(started)
        started = time.perf_counter()
        out.candidates["dense"] = index.dense(query_vector, k=pool, where=where)
        out.timings_ms["dense"] = _ms(started)
    if query.mode in ("keyword", "hybrid") and query.text.strip():
        started = time.perf_counter()
        out.candidates["keyword"] = index.keyword(query.text, k=pool, where=where)
        out.timings_ms["keyword"] = _ms(started)
    started = time.perf_counter()
    if query.mode == "hybrid":
        out.fused = fuse(
            out.candidates,
            method=query.fusion,
            weights=query.weights,
            rrf_k=query.rrf_k,
            normalisation=query.normalisation,
        )
    else:
        name = "dense" if query.mode == "dense" else "keyword"
        out.fused = single(name, out.candidates.get(name, []))
    ranked = out.fused
    if query.min_score is not None:
        threshold = query.min_score
        ranked = [h for h in ranked if h.score >= threshold]
        out.below_threshold = len(out.fused) - len(ranked)
    out.timings_ms["fuse"] = _ms(started)
    if query.mmr_lambda is not None and query_vector is not None and vectors is not None and ranked:
        started = time.perf_counter()
        ranked = _diversify(ranked, query_vector, vectors, k=query.k, lam=query.mmr_lambda)
        out.timings_ms["mmr"] = _ms(started)
    out.ranked = ranked
    out.hits = ranked[: query.k]
    return out


def _query_vector(query: Query, embed: QueryEmbedder) -> FloatArray:
    if query.vector is not None:
        vector = np.asarray(query.vector, dtype=np.float32)
        if not np.all(np.isfinite(vector)):
            raise InvalidRequest("the query vector holds NaN or infinite values", param="vector")
        return vector
    return np.asarray(embed(query.text), dtype=np.float32).reshape(-1)


def _diversify(
    ranked: list[FusedHit], query_vector: FloatArray, vectors: VectorLookup, *, k: int, lam: float
) -> list[FusedHit]:
    found = vectors([h.id for h in ranked])
    usable = [h for h in ranked if h.id in found]
    if not usable:
        return ranked
    order = mmr(query_vector, np.stack([found[h.id] for h in usable]), k=k, lam=lam)
    return [usable[i] for i in order]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
