"""POST /api/rag/{collection}/query: retrieve from a collection for the caller (docs/rag-retrieval.md).

Any key of the project may query; it reads what its identity may read (rag/identity.py): a service key and
above may name its end user and their groups, other keys act as themselves. The access filter runs inside the
index search. Every query is traced: a `retrieval` span in a trace of its own, whose id the response carries
(`trace_id`, and the `x-pilothouse-trace-id` header). With `pack`, the response also holds the context block
packed into a token budget, with citation markers and what was dropped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.gateway.tokens import estimate_text_tokens
from pilothouse.principal import Principal
from pilothouse.rag.identity import identity_for
from pilothouse.rag.options import RetrievalOptions
from pilothouse.rag.packing import Packed, PackItem, pack
from pilothouse.rag.querying import RagQueries
from pilothouse.rag.retrieve import Retrieval
from pilothouse.rag.spans import chunk_flags, record_retrieval
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.tracing.model import TraceRecord

router = APIRouter(prefix="/api/rag", tags=["rag"])

MAX_QUERY_CHARS = 10_000


class PackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_tokens: int = Field(ge=1, le=2_000_000, description="Tokens the context block may take.")
    drop_flags: list[str] = Field(default_factory=list, max_length=16, description="Leave out chunks so flagged.")
    reorder: bool = Field(default=True, description="Order against lost-in-the-middle.")


class QueryBody(RetrievalOptions):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to search for.")
    vector: list[float] | None = Field(
        default=None, max_length=8192, description="A query vector computed with `embedding_model`."
    )
    pack: PackBody | None = Field(default=None, description="Also pack the hits into a context block.")


def hit_json(retrieval: Retrieval) -> list[dict[str, Any]]:
    out = []
    for hit in retrieval.hits:
        meta = dict(hit.metadata or {})
        meta.pop("_acl", None)
        out.append(
            {
                "id": hit.id,
                "score": hit.score,
                "text": hit.text,
                "document": meta.get("_document"),
                "source": meta.get("_source"),
                "title": meta.get("_title"),
                "flags": chunk_flags(meta),
                "ranks": {name: {"rank": s.rank, "score": s.score} for name, s in hit.sources.items()},
                "metadata": meta,
            }
        )
    return out


def pack_hits(retrieval: Retrieval, body: PackBody) -> Packed:
    items = [PackItem(h.id, h.text, h.score, h.metadata) for h in retrieval.hits]
    return pack(
        items,
        budget=body.budget_tokens,
        count_tokens=estimate_text_tokens,
        drop_flags=set(body.drop_flags),
        reorder=body.reorder,
    )


async def run_traced_query(
    state: AppState, principal: Principal, collection: str, body: QueryBody, *, tags: Sequence[str] = ()
) -> tuple[str, Retrieval, Packed | None]:
    """A query as the caller: identity (asserted end user and groups checked), retrieval, optional rerank and
    packing, and its `retrieval` span in a trace of its own (the dashboard's playground runs it too, tagged).
    Returns (the trace id, the retrieval, what was packed)."""
    queries = state.pipeline.services.rag or RagQueries(state.store, state.settings.data_dir)
    identity = identity_for(principal, body.identity.asserted() if body.identity else None)
    q = body.to_query(body.query, vector=body.vector)
    started = time.time()
    trace = TraceRecord(
        project_id=principal.project_id,
        name=f"rag query {collection}",
        api_key_id=principal.key_id,
        user_id=identity.user,
        tags=list(tags),
        source="http",
        started_at=started,
    )
    retrieval = await queries.run_async(identity, collection, q)  # a refusal raises: nothing to trace
    if body.rerank is not None:
        await queries.rerank(retrieval, body.rerank, principal=principal, source="http", trace_id=trace.id)
    packed = pack_hits(retrieval, body.pack) if body.pack is not None else None
    record_retrieval(trace, retrieval, packed=packed, started_at=started)
    trace.finish()
    await state.sink.write(trace)
    return trace.id, retrieval, packed


@router.post("/{collection}/query")
async def query(
    body: QueryBody,
    state: StateDep,
    principal: PrincipalDep,
    response: Response,
    collection: str = Path(min_length=1, max_length=100, description="The collection's name."),
) -> dict[str, Any]:
    """Retrieve the best chunks of a collection the caller may read."""
    require_role(principal, "viewer")
    trace_id, retrieval, packed = await run_traced_query(state, principal, collection, body)
    response.headers["x-pilothouse-trace-id"] = trace_id
    out: dict[str, Any] = {
        "collection": collection,
        "trace_id": trace_id,
        "mode": retrieval.query.mode,
        "hits": hit_json(retrieval),
    }
    if retrieval.rerank is not None:
        out["rerank"] = retrieval.rerank
    if packed is not None:
        out["context"] = packed.context
        out["packed"] = packed.to_json()
    return out
