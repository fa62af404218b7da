"""/api/audit: read the hash-chained audit log, verify it against its signed checkpoints, export the public key.

Admins read their own project's events; owners may read another project's or `all`, verify the chain, which
spans every project, and checkpoint it. Reading the log is the one cross-project read that is not itself an
audit event: an event per page would feed the log being paged through, and a reader paging until an empty page
would never stop."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from pilothouse.audit.chain import list_events
from pilothouse.audit.checkpoints import AuditSetup, stored_checkpoints, write_checkpoint
from pilothouse.audit.verification import verify_log
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
    actor: Annotated[str | None, Query(max_length=200, description="Only events by this actor (a key id).")] = None,
    target: Annotated[str | None, Query(max_length=200, description="Only events on this target.")] = None,
) -> dict[str, Any]:
    """Events oldest first; page with `after` = the previous page's `next_after` (null: no more)."""
    require_role(principal, "admin")
    if action is not None and len(action) > MAX_ACTIONS:
        raise InvalidRequest(f"at most {MAX_ACTIONS} 'action' filters, got {len(action)}", param="action")
    start, end = time_param(since, "since"), time_param(until, "until")
    with state.store.connect() as conn:
        project_id = resolve_projects(conn, principal, project)
        rows = list_events(
            conn,
            project_id=project_id,
            after_seq=after,
            limit=limit,
            actions=action or (),
            since=start,
            until=end,
            actor=actor,
            target=target,
        )
    return {"data": [e.to_dict() for e in rows], "next_after": rows[-1].seq if len(rows) == limit else None}


def _setup(state: StateDep) -> AuditSetup:
    if state.audit is None:  # build_state always sets it; a state built otherwise has no key
        raise InvalidRequest("this server has no audit signing key", code="audit_key_missing")
    return state.audit


@router.get("/verify")
def verify(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Recompute the chain and check it against every signed checkpoint (table and file): detects a deleted or
    edited event, a cut tail and a replaced table (docs/audit.md)."""
    require_role(principal, OWNER)  # the chain links every project's events
    setup = _setup(state)
    with state.store.connect() as conn:
        report = verify_log(conn, setup.trusted, setup.file)
    return report.to_dict()


@router.get("/checkpoints")
def checkpoints(
    state: StateDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """The newest signed checkpoints of the chain head, newest first."""
    require_role(principal, OWNER)
    with state.store.connect() as conn:
        rows = stored_checkpoints(conn)
    return {"data": [c.to_dict() for c in reversed(rows[-limit:])]}


@router.post("/checkpoints", status_code=201)
async def checkpoint_now(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Sign and store a checkpoint of the head now (the server also does every `audit.checkpoint_interval_s`)."""
    require_role(principal, OWNER)
    setup = _setup(state)
    written = await asyncio.to_thread(write_checkpoint, state.store, setup.signer, setup.file)
    if written is None:  # only with only_if_moved, which is off here
        raise RuntimeError("no checkpoint was written")
    return written.to_dict()


@router.get("/public-key")
def public_key(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The PEM public key that verifies this server's checkpoints (for `pilothouse audit verify --public-key`),
    and the keys trusted besides it (rotated-out ones)."""
    require_role(principal, "admin")
    setup = _setup(state)
    return {"key_id": setup.signer.key_id, "public_key_pem": setup.signer.public_pem(), "trusted": setup.trusted.ids}
