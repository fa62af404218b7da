"""/api/traces: list (filter by time, model, status, user, session, source, prompt version, tag, cost, latency,
score and full text; newest, costliest or slowest first; cursor-paginated; docs/traces-query.md) and show one."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.store.search import EmptyQuery, query_words
from pilothouse.store.traces import BadCursor, BadFilter, ScoreFilter, TraceFilter, get_trace, list_traces
from pilothouse.timewindow import time_param
from pilothouse.tracing.explain import explain_trace
from pilothouse.tracing.model import TraceSource

router = APIRouter(prefix="/api/traces", tags=["traces"])


@router.get("")
def list_all(
    state: StateDep,
    principal: PrincipalDep,
    since: str | None = None,
    until: str | None = None,
    model: str | None = None,
    status: Literal["ok", "error", "unknown_outcome"] | None = None,
    user: str | None = None,
    session: str | None = None,
    source: Annotated[
        TraceSource | None, Query(description="Who made the calls: the HTTP API, prompt scenario tests, ...")
    ] = None,
    prompt: Annotated[str | None, Query(description="Only calls of this prompt (its name).")] = None,
    prompt_version: Annotated[int | None, Query(ge=1, description="Only this version of `prompt`.")] = None,
    tag: Annotated[str | None, Query(description="Only traces carrying this tag.")] = None,
    cost_min: Annotated[Decimal | None, Query(ge=0, le=1_000_000, description="Cost at least this (USD).")] = None,
    cost_max: Annotated[Decimal | None, Query(ge=0, le=1_000_000, description="Cost at most this (USD).")] = None,
    latency_min_ms: Annotated[float | None, Query(ge=0)] = None,
    latency_max_ms: Annotated[float | None, Query(ge=0)] = None,
    score: Annotated[
        str | None, Query(max_length=240, description="A numeric score compared, e.g. groundedness<0.5.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=1000, description="Words the kept content must all contain (full text).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    order: Annotated[
        Literal["newest", "cost", "latency"],
        Query(description="newest first (default), costliest first, or slowest first (finished traces)."),
    ] = "newest",
) -> dict[str, Any]:
    try:
        flt = TraceFilter(
            project_id=principal.project_id,
            since=time_param(since, "since", durations=False),
            until=time_param(until, "until", durations=False),
            model=model,
            status=status,
            user_id=user,
            session_id=session,
            source=source,
            prompt_name=prompt,
            prompt_version=prompt_version,
            tag=tag,
            cost_min=cost_min,
            cost_max=cost_max,
            latency_min_ms=latency_min_ms,
            latency_max_ms=latency_max_ms,
            score=None if score is None else ScoreFilter.parse(score),
            q=q,
        )
        if q is not None:
            query_words(q)
        with state.store.connect() as conn:
            page, next_cursor = list_traces(conn, flt, limit=limit, cursor=cursor, order=order)
    except BadCursor as exc:
        raise InvalidRequest(str(exc), param="cursor") from exc
    except BadFilter as exc:
        raise InvalidRequest(str(exc), param=exc.param) from exc
    except EmptyQuery as exc:
        raise InvalidRequest(str(exc), param="q") from exc
    return {"data": page, "next_cursor": next_cursor}


@router.get("/{trace_id}")
def show(trace_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    with state.store.connect() as conn:
        trace = get_trace(conn, principal.project_id, trace_id)
    if trace is None:
        raise NotFound(f"no trace {trace_id!r} in this project")
    return trace


@router.get("/{trace_id}/explain")
def explain(trace_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Why the trace answered as it did: prompt and version, model and parameters, retrieved chunks, guard
    decisions, tool calls, the path of spans with cost and latency, scores and feedback (tracing/explain.py)."""
    with state.store.connect() as conn:
        found = explain_trace(conn, principal.project_id, trace_id)
    if found is None:
        raise NotFound(f"no trace {trace_id!r} in this project")
    return found
