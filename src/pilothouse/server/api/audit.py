"""/api/audit: read the hash-chained audit log and verify it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
def events(
    state: StateDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.connect() as conn:
        rows = list_events(conn, project_id=principal.project_id, after_seq=after, limit=limit)
    return {"data": [e.to_dict() for e in rows]}


@router.get("/verify")
def verify(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.connect() as conn:
        checked, broken = verify_chain(conn)
    return {
        "ok": broken is None,
        "checked": checked,
        "broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason},
    }
