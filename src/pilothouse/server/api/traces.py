"""/api/traces: list (filter by time, model, status, user, session, source; cursor-paginated) and show one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.store.traces import BadCursor, TraceFilter, get_trace, list_traces
from pilothouse.timewindow import time_param
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
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    flt = TraceFilter(
        project_id=principal.project_id,
        since=time_param(since, "since", durations=False),
        until=time_param(until, "until", durations=False),
        model=model,
        status=status,
        user_id=user,
        session_id=session,
        source=source,
    )
    try:
        with state.store.connect() as conn:
            page, next_cursor = list_traces(conn, flt, limit=limit, cursor=cursor)
    except BadCursor as exc:
        raise InvalidRequest(str(exc), param="cursor") from exc
    return {"data": page, "next_cursor": next_cursor}


@router.get("/{trace_id}")
def show(trace_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    with state.store.connect() as conn:
        trace = get_trace(conn, principal.project_id, trace_id)
    if trace is None:
        raise NotFound(f"no trace {trace_id!r} in this project")
    return trace
