"""Every retrieval is a `retrieval` span: what was asked, how it was filtered, what each retriever found,
the fused ranking, what was packed into the prompt and what was dropped, and the chunks' safety flags.

- `input`: the query text, the caller's metadata filter (the access filter is summarised, never its tokens'
  documents), the identity it ran as (user, groups, or `all`), and the settings (mode, fusion, k, ...);
- `output`: `candidates` (per retriever: chunk id, rank, raw score, document, flags), `ranking` (the fused
  order with each retriever's rank and score), `hits` (the result), and `packed` (citations, dropped chunks
  with reasons, tokens used of the budget) when the retrieval fed a prompt;
- attributes (numbers and flags, kept whatever the project's content capture):
  `pilothouse.retrieval.collection`, `.mode`, `.fusion`, `.k`, `.candidates.<retriever>`, `.hits`,
  `.below_threshold`, `.packed`, `.dropped`, `.flagged_chunks` (chunk id -> flags, e.g.
  `{"c1": ["injection"]}`) and `.timings_ms`.
Chunk texts are not copied into the span (they are in the collection); the sink applies the project's content
capture (tracing/capture.py) to the query like to any input.

The span hangs in the answer's trace: the RAG chat stage opens it in the chat call's trace, and a query through
`POST /api/rag/{collection}/query` makes a trace of its own whose id the response returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pilothouse.rag.fusion import FusedHit
from pilothouse.rag.packing import Packed
from pilothouse.rag.retrieve import Retrieval
from pilothouse.tracing.model import SpanRecord, TraceRecord
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import VectorHit

SPAN_NAME = "retrieval"


def filter_json(where: Filter | None) -> dict[str, Any] | None:
    """A filter as JSON (the request's own shape)."""
    if where is None or where.is_empty():
        return None
    out: dict[str, Any] = {}
    if where.equals:
        out["equals"] = dict(where.equals)
    if where.one_of:
        out["one_of"] = {k: sorted(v, key=str) for k, v in where.one_of.items()}
    if where.any_of:
        out["any_of"] = {k: sorted(v) for k, v in where.any_of.items()}
    if where.ranges:
        out["ranges"] = {k: list(v) for k, v in where.ranges.items()}
    return out


def chunk_flags(metadata: Mapping[str, Any] | None) -> list[str]:
    flags = (metadata or {}).get("_flags")
    return [str(f) for f in flags] if isinstance(flags, list | tuple) else []


def _candidate(rank: int, hit: VectorHit) -> dict[str, Any]:
    meta = hit.metadata or {}
    out: dict[str, Any] = {"id": hit.id, "rank": rank, "score": round(float(hit.score), 6)}
    if meta.get("_document") is not None:
        out["document"] = meta["_document"]
    flags = chunk_flags(meta)
    if flags:
        out["flags"] = flags
    return out


def _fused(hit: FusedHit) -> dict[str, Any]:
    meta = hit.metadata or {}
    out: dict[str, Any] = {
        "id": hit.id,
        "score": round(float(hit.score), 6),
        "sources": {name: {"rank": s.rank, "score": round(float(s.score), 6)} for name, s in hit.sources.items()},
    }
    if meta.get("_document") is not None:
        out["document"] = meta["_document"]
    if meta.get("_source") is not None:
        out["source"] = meta["_source"]
    flags = chunk_flags(meta)
    if flags:
        out["flags"] = flags
    return out


def flagged_chunks(retrieval: Retrieval) -> dict[str, list[str]]:
    """Chunk id -> flags, over every candidate the retrieval saw."""
    out: dict[str, list[str]] = {}
    for hits in retrieval.candidates.values():
        for hit in hits:
            flags = chunk_flags(hit.metadata)
            if flags:
                out[hit.id] = flags
    return out


def record_retrieval(
    trace: TraceRecord,
    retrieval: Retrieval,
    *,
    packed: Packed | None = None,
    parent_id: str | None = None,
    started_at: float | None = None,
) -> SpanRecord:
    """Add the retrieval span to `trace` (finished; see the module docstring)."""
    span = trace.span("retrieval", SPAN_NAME, parent_id=parent_id)
    if started_at is not None:
        span.started_at = started_at
    query = retrieval.query
    identity = retrieval.identity
    span.input = {
        "query": query.text,
        "collection": retrieval.collection.name,
        "filters": filter_json(query.where),
        "identity": {"all": True} if identity.sees_all else {"user": identity.user, "groups": sorted(identity.groups)},
        "settings": {
            "mode": query.mode,
            "fusion": query.fusion if query.mode == "hybrid" else None,
            "weights": dict(query.weights) if query.weights else None,
            "k": query.k,
            "candidates": query.candidates,
            "min_score": query.min_score,
            "mmr_lambda": query.mmr_lambda,
        },
    }
    output: dict[str, Any] = {
        "candidates": {
            name: [_candidate(rank, h) for rank, h in enumerate(hits, start=1)]
            for name, hits in retrieval.candidates.items()
        },
        "ranking": [_fused(h) for h in retrieval.fused[: max(query.candidates, query.k)]],
        "hits": [_fused(h) for h in retrieval.hits],
    }
    if packed is not None:
        output["packed"] = packed.to_json()
    span.output = output
    flagged = flagged_chunks(retrieval)
    attrs = span.attributes
    attrs["pilothouse.retrieval.collection"] = retrieval.collection.name
    attrs["pilothouse.retrieval.embedding_model"] = retrieval.collection.embedding_model
    attrs["pilothouse.retrieval.mode"] = query.mode
    if query.mode == "hybrid":
        attrs["pilothouse.retrieval.fusion"] = query.fusion
    attrs["pilothouse.retrieval.k"] = query.k
    for name, hits in retrieval.candidates.items():
        attrs[f"pilothouse.retrieval.candidates.{name}"] = len(hits)
    attrs["pilothouse.retrieval.hits"] = len(retrieval.hits)
    attrs["pilothouse.retrieval.below_threshold"] = retrieval.below_threshold
    if retrieval.rerank is not None:
        attrs["pilothouse.retrieval.rerank.model"] = retrieval.rerank["model"]
        if retrieval.rerank.get("error"):
            attrs["pilothouse.retrieval.rerank.error"] = retrieval.rerank["error"]
        output["rerank"] = retrieval.rerank
    if packed is not None:
        attrs["pilothouse.retrieval.packed"] = len(packed.citations)
        attrs["pilothouse.retrieval.dropped"] = len(packed.dropped)
        attrs["pilothouse.retrieval.context_tokens"] = packed.tokens
    if flagged:
        attrs["pilothouse.retrieval.flagged_chunks"] = flagged
    attrs["pilothouse.retrieval.timings_ms"] = dict(retrieval.timings_ms)
    span.model = retrieval.collection.embedding_model
    span.finish()
    return span
