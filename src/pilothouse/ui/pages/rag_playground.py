"""The RAG query playground: a query from the page's GET form, run as the session's principal through the same
steps as `POST /api/rag/{collection}/query` (server/api/rag_query.py), shown with everything it did.

The form's fields become the route's `QueryBody` (the same validation, so a bad value is the same 400); the
query runs through `RagQueries` with the identity `identity_for` gives the principal, is packed with the route's
`pack_hits` when a token budget is given, and is traced like the route's (a `retrieval` span in a trace of its
own, linked from the page). The page then shows each retriever's candidates with their scores, the fused
ranking, the top k with their text, and what was packed or dropped. Reranking (a chat model call) is left to
the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pilothouse.errors import InvalidRequest
from pilothouse.principal import Principal
from pilothouse.rag.fusion import FusedHit
from pilothouse.rag.packing import Packed
from pilothouse.rag.retrieve import Retrieval
from pilothouse.rag.spans import chunk_flags
from pilothouse.server.api.rag_query import QueryBody, run_traced_query
from pilothouse.server.state import AppState
from pilothouse.vectors.protocol import VectorHit

FIELDS = ("q", "mode", "k", "candidates", "fusion", "min_score", "mmr_lambda", "filters", "pack", "user", "groups")
"""The form's fields (and `all`, a checkbox)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A chunk in one retriever's list."""

    rank: int
    id: str
    score: float
    source: str | None
    title: str | None
    flags: list[str]


@dataclass(frozen=True, slots=True)
class Ranked:
    """A chunk of the fused ranking, with each retriever's rank and raw score, and whether it made the top k."""

    rank: int
    id: str
    score: float
    source: str | None
    title: str | None
    sources: dict[str, tuple[int, float]]
    flags: list[str]
    text: str
    in_top_k: bool


@dataclass(frozen=True, slots=True)
class PlaygroundResult:
    """What one playground query did."""

    trace_id: str
    identity: str
    candidates: dict[str, list[Candidate]]
    ranking: list[Ranked]
    hits: list[Ranked]
    below_threshold: int
    timings_ms: dict[str, float]
    packed: Packed | None


def _number(raw: str, param: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(raw.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InvalidRequest(f"{param} must be {what}, got {raw!r}", param=param) from None


def query_body(form: Mapping[str, str]) -> QueryBody | None:
    """The route's request body from the form's fields (None: no query asked yet). InvalidRequest for a bad one."""
    text = form.get("q", "")
    if not text.strip():
        return None
    raw: dict[str, Any] = {"query": text, "mode": form.get("mode") or "hybrid"}
    for name, kind in (("k", int), ("candidates", int), ("min_score", float), ("mmr_lambda", float)):
        value = form.get(name, "")
        if value.strip():
            raw[name] = _number(value, name, kind)
    if form.get("fusion"):
        raw["fusion"] = form["fusion"]
    if form.get("filters", "").strip():
        try:
            raw["filters"] = json.loads(form["filters"])
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"filters must be a JSON object: {exc.msg}", param="filters") from None
    if form.get("pack", "").strip():
        raw["pack"] = {"budget_tokens": _number(form["pack"], "pack", int)}
    identity: dict[str, Any] = {}
    if form.get("all") in ("1", "on", "true"):
        identity["all"] = True
    if form.get("user", "").strip():
        identity["user"] = form["user"].strip()
    groups = [g.strip() for g in form.get("groups", "").split(",") if g.strip()]
    if groups:
        identity["groups"] = groups
    if identity:
        raw["identity"] = identity
    try:
        return QueryBody.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        raise InvalidRequest(f"{where}: {first['msg']}", param=where) from None


def _meta(metadata: Mapping[str, Any] | None, key: str) -> str | None:
    value = (metadata or {}).get(key)
    return None if value is None else str(value)


def _candidates(hits: Sequence[VectorHit]) -> list[Candidate]:
    return [
        Candidate(
            rank,
            h.id,
            float(h.score),
            _meta(h.metadata, "_source"),
            _meta(h.metadata, "_title"),
            chunk_flags(h.metadata),
        )
        for rank, h in enumerate(hits, start=1)
    ]


def _ranked(hits: Sequence[FusedHit], top: set[str]) -> list[Ranked]:
    return [
        Ranked(
            rank,
            h.id,
            float(h.score),
            _meta(h.metadata, "_source"),
            _meta(h.metadata, "_title"),
            {name: (s.rank, float(s.score)) for name, s in h.sources.items()},
            chunk_flags(h.metadata),
            h.text,
            h.id in top,
        )
        for rank, h in enumerate(hits, start=1)
    ]


def _result(trace_id: str, retrieval: Retrieval, packed: Packed | None) -> PlaygroundResult:
    identity = retrieval.identity
    if identity.sees_all:
        who = "everything (no access lists)"
    else:
        who = f"user {identity.user}" + (f", groups {', '.join(sorted(identity.groups))}" if identity.groups else "")
    top = {h.id for h in retrieval.hits}
    query = retrieval.query
    return PlaygroundResult(
        trace_id=trace_id,
        identity=who,
        candidates={name: _candidates(hits) for name, hits in retrieval.candidates.items()},
        ranking=_ranked(retrieval.fused[: max(query.candidates, query.k)], top),
        hits=_ranked(retrieval.hits, top),
        below_threshold=retrieval.below_threshold,
        timings_ms=dict(retrieval.timings_ms),
        packed=packed,
    )


async def run_playground(state: AppState, principal: Principal, collection: str, body: QueryBody) -> PlaygroundResult:
    """Run the query as the route does (identity, retrieval, packing, the trace) and keep what it did."""
    trace_id, retrieval, packed = await run_traced_query(state, principal, collection, body, tags=["dashboard"])
    return _result(trace_id, retrieval, packed)
