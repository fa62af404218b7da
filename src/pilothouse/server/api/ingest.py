"""POST /api/ingest/spans: batches of spans from the tracing SDK (`pilothouse.observe`, `wrap_openai`).

The caller's key (service role or higher) decides the project; the trace ids are the SDK's. One trace may be
written by several batches and by the gateway (a call made with the trace's `traceparent`): the store merges
them into one trace row (tracing/merge.py). A batch naming a trace of another project is refused whole (404,
as for no such trace).
Spans the SDK could not price (a direct call to a provider) are priced here from their model and usage, with
the gateway's price book. The answer comes once the batch is stored (or spilled, when the database is down).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from pilothouse.config import Deployment
from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.gateway.pricing import PriceBook, cost
from pilothouse.gateway.providers.base import Usage
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store.tables import traces
from pilothouse.tracing.model import SpanKind, SpanRecord, TraceRecord

router = APIRouter(prefix="/api/ingest", tags=["ingest"])

TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
SpanId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Label = Annotated[str, StringConstraints(max_length=200)]
MAX_SPANS = 5000


MAX_EPOCH_S = 10_000_000_000.0
"""Times past the year 2286 are refused: they are mistakes (milliseconds or nanoseconds sent as seconds), and a
latency computed from them would not be a finite number."""


class SpanIn(BaseModel):
    """One ended span, as `pilothouse.sdk.tracing.wire` writes it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    trace_id: TraceId
    id: SpanId
    parent_id: SpanId | None = None
    kind: SpanKind
    name: str = Field(min_length=1, max_length=200)
    status: Literal["ok", "error"] = "ok"
    error: str | None = Field(default=None, max_length=10_000)
    started_at: float = Field(ge=0, le=MAX_EPOCH_S, description="Epoch seconds.")
    ended_at: float = Field(ge=0, le=MAX_EPOCH_S, description="Epoch seconds.")
    ttft_ms: float | None = Field(default=None, ge=0, le=MAX_EPOCH_S * 1000)
    model: Label | None = None
    provider: str | None = Field(default=None, max_length=50)
    input_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    output_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    cost_usd: Decimal | None = Field(default=None, ge=0, le=10**9, description="USD, as a decimal string.")
    attributes: dict[str, Any] | None = None
    input: Any = None
    output: Any = None


class TraceIn(BaseModel):
    """A trace's own fields (its name, and what `update_trace` set)."""

    model_config = ConfigDict(extra="forbid")

    id: TraceId
    name: str = Field(min_length=1, max_length=200)
    session_id: Label | None = None
    user_id: Label | None = None
    tags: list[Label] | None = Field(default=None, max_length=50)


class SpanBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spans: list[SpanIn] = Field(min_length=1, max_length=MAX_SPANS)
    traces: list[TraceIn] = Field(default_factory=list, max_length=MAX_SPANS)


@router.post("/spans", status_code=202)
async def ingest_spans(batch: SpanBatch, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Store a batch of SDK spans in the caller's project (service keys and up)."""
    require_role(principal, "service")
    _check(batch)
    records = _records(batch, principal.project_id, principal.key_id, state.gateway.prices)
    foreign = await asyncio.to_thread(_foreign_traces, state, principal.project_id, list(records))
    if foreign:
        index = next(i for i, s in enumerate(batch.spans) if s.trace_id in foreign)
        raise NotFound(  # as for a trace that does not exist: another project's ids are not confirmed
            f"trace {batch.spans[index].trace_id} is not a trace of this project", param=f"spans.{index}.trace_id"
        )
    await asyncio.gather(*(state.sink.write(record) for record in records.values()))
    return {"accepted": len(batch.spans), "traces": len(records)}


def _check(batch: SpanBatch) -> None:
    """What the schema cannot say: time runs forward, span ids are unique, trace entries match spans."""
    seen: set[str] = set()
    for i, s in enumerate(batch.spans):
        if s.ended_at < s.started_at:
            raise InvalidRequest("ended_at is before started_at", param=f"spans.{i}.ended_at")
        if s.id in seen:
            raise InvalidRequest(f"span id {s.id} appears twice in the batch", param=f"spans.{i}.id")
        seen.add(s.id)
    trace_ids = {s.trace_id for s in batch.spans}
    for i, t in enumerate(batch.traces):
        if t.id not in trace_ids:
            raise InvalidRequest(f"trace {t.id} has no span in this batch", param=f"traces.{i}.id")


def _records(batch: SpanBatch, project_id: str, key_id: str | None, prices: PriceBook) -> dict[str, TraceRecord]:
    info = {t.id: t for t in batch.traces}
    grouped: dict[str, list[SpanIn]] = defaultdict(list)
    for s in batch.spans:
        grouped[s.trace_id].append(s)
    records: dict[str, TraceRecord] = {}
    for trace_id, spans in grouped.items():
        meta = info.get(trace_id)
        record = TraceRecord(
            project_id=project_id,
            name=meta.name if meta else next((s.name for s in spans if s.parent_id is None), spans[0].name),
            id=trace_id,
            api_key_id=key_id,
            session_id=meta.session_id if meta else None,
            user_id=meta.user_id if meta else None,
            tags=meta.tags if meta and meta.tags else None,
            started_at=min(s.started_at for s in spans),
            ended_at=max(s.ended_at for s in spans),
            source="sdk",
        )
        record.spans = [_span(s, project_id, prices) for s in spans]
        if any(s.status == "error" and s.parent_id is None for s in spans):
            record.status = "error"
        record.model = next((s.model for s in spans if s.kind == "llm" and s.model), None)
        records[trace_id] = record
    return records


def _span(s: SpanIn, project_id: str, prices: PriceBook) -> SpanRecord:
    return SpanRecord(
        trace_id=s.trace_id,
        project_id=project_id,
        kind=s.kind,
        name=s.name,
        id=s.id,
        parent_id=s.parent_id,
        status=s.status,
        error=s.error,
        started_at=s.started_at,
        ended_at=s.ended_at,
        latency_ms=round((s.ended_at - s.started_at) * 1000.0, 3),
        ttft_ms=s.ttft_ms,
        model=s.model,
        provider=s.provider,
        input_tokens=s.input_tokens,
        output_tokens=s.output_tokens,
        cost_usd=s.cost_usd if s.cost_usd is not None else _price(s, prices),
        attributes=s.attributes or {},
        input=s.input,
        output=s.output,
    )


def _price(s: SpanIn, prices: PriceBook) -> Decimal | None:
    """The cost of a model call the SDK recorded with usage but no cost; None when the model has no price."""
    if s.kind not in ("llm", "embedding") or not s.model or not s.provider or s.input_tokens is None:
        return None
    attributes = s.attributes or {}
    address = attributes.get("server.address")
    cached = attributes.get("gen_ai.usage.cache_read.input_tokens")
    try:
        deployment = Deployment(
            provider=s.provider, model=s.model, base_url=address if isinstance(address, str) and address else None
        )
        price = prices.price_for(deployment)
        if price is None:
            return None
        usage = Usage(s.input_tokens, s.output_tokens or 0, cached if isinstance(cached, int) and cached > 0 else 0)
        return cost(price, usage)
    except ValueError:  # an odd model name or base URL: the span is kept, unpriced
        return None


def _foreign_traces(state: AppState, project_id: str, trace_ids: list[str]) -> set[str]:
    """The ids among `trace_ids` that name a trace of another project."""
    with state.store.connect() as conn:
        rows = conn.execute(
            select(traces.c.id).where(traces.c.id.in_(trace_ids), traces.c.project_id != project_id)
        ).all()
    return {row.id for row in rows}
