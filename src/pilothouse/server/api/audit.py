"""/api/audit: read the hash-chained audit log and verify it.

Admins read their own project's events; owners may read another project's or `all`, and verify the chain,
which spans every project. Reading the log is the one cross-project read that is not itself an audit event:
an event per page would feed the log being paged through, and a reader paging until an empty page would never
stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import resolve_projects
from pilothouse.store.keys import OWNER

router = APIRouter(prefix="/api/audit", tags=["audit"])

MAX_SEQ = 2**31 - 1
"""The largest audit sequence number (a 32-bit INTEGER column): a larger `after` is a 422, not a database error."""


@router.get("")
def events(
    state: StateDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Events after this sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    project: Annotated[str | None, Query(description="Another project or `all` (owner keys).")] = None,
) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.connect() as conn:
        project_id = resolve_projects(conn, principal, project)
        rows = list_events(conn, project_id=project_id, after_seq=after, limit=limit)
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
