"""/api/audit: read the hash-chained audit log and verify it.

Admins read their own project's events; owners may read another project's or `all`, and verify the chain,
which spans every project. Reading the log is the one cross-project read that is not itself an audit event:
an event per page would feed the log being paged through, and a reader paging until an empty page would never
stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.errors import InvalidRequest
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import resolve_projects
from pilothouse.store.keys import OWNER
from pilothouse.timewindow import time_param

router = APIRouter(prefix="/api/audit", tags=["audit"])

MAX_SEQ = 2**31 - 1
"""The largest audit sequence number (a 32-bit INTEGER column): a larger `after` is a 422, not a database error."""
MAX_ACTIONS = 20


@router.get("")
def events(
    state: StateDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Events after this sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    project: Annotated[str | None, Query(description="Another project or `all` (owner keys).")] = None,
    action: Annotated[
        list[str] | None,
        Query(description="Only these actions (repeatable); `prompt.label` also matches `prompt.label.move`."),
    ] = None,
    since: Annotated[
        str | None, Query(description="Events at or after: a duration before now (7d, 24h, 30m), epoch or ISO 8601.")
    ] = None,
    until: Annotated[str | None, Query(description="Events before: a duration before now, epoch or ISO 8601.")] = None,
) -> dict[str, Any]:
    require_role(principal, "admin")
    if action is not None and len(action) > MAX_ACTIONS:
        raise InvalidRequest(f"at most {MAX_ACTIONS} 'action' filters, got {len(action)}", param="action")
    start, end = time_param(since, "since"), time_param(until, "until")
    with state.store.connect() as conn:
        project_id = resolve_projects(conn, principal, project)
        rows = list_events(
            conn, project_id=project_id, after_seq=after, limit=limit, actions=action or (), since=start, until=end
        )
    return {"data": [e.to_dict() for e in rows]}


@router.get("/verify")
def verify(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, OWNER)  # the chain links every project's events
    with state.store.connect() as conn:
        checked, broken = verify_chain(conn)
    return {
        "ok": broken is None,
        "checked": checked,
        "broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason},
    }
