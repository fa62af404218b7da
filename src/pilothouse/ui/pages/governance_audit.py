"""The audit log page: events paged and filtered as `GET /api/audit` pages them, and the chain's verification
against its signed checkpoints (`GET /api/audit/verify`, `/checkpoints`: owner keys, since the chain links every
project's events; an admin sees the events of its project and is told verification needs an owner key).

Without a filter the page opens at the newest events (the page after `head - PAGE`); the API pages forward by
sequence number (`after`), and so does the page.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from pilothouse.audit.checkpoints import chain_head
from pilothouse.server.api import audit as audit_api
from pilothouse.store.keys import OWNER, role_at_least
from pilothouse.ui.context import UiContext, UiDep, require_ui_role
from pilothouse.ui.render import page

router = APIRouter(include_in_schema=False)

PAGE = 50


@router.get("/governance/audit")
async def audit_page(
    ctx: UiDep,
    after: Annotated[int | None, Query(ge=0, le=audit_api.MAX_SEQ)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    require_ui_role(ctx, "admin")
    values = await asyncio.to_thread(_read, ctx, after, action or None, actor or None)
    return page(ctx, "governance/audit.html", title="Audit log", action=action or "", actor=actor or "", **values)


def _read(ctx: UiContext, after: int | None, action: str | None, actor: str | None) -> dict[str, Any]:
    filtered = action is not None or actor is not None
    with ctx.state.store.connect() as conn:
        _, head, _ = chain_head(conn)
    start = after if after is not None else (0 if filtered else max(head - PAGE, 0))
    listed = audit_api.events(
        ctx.state,
        ctx.principal,
        after=start,
        limit=PAGE,
        project=None,
        action=[action] if action else None,
        since=None,
        until=None,
        actor=actor,
        target=None,
    )
    events = listed["data"]
    params = {k: v for k, v in (("action", action), ("actor", actor)) if v}
    newer_url = None if listed["next_after"] is None else _url({**params, "after": listed["next_after"]})
    older_url = None
    if not filtered and start > 0:
        older_url = _url({"after": max(start - PAGE, 0)})
    owner = role_at_least(ctx.principal.role, OWNER)
    verification = checkpoints = None
    if owner:
        verification = audit_api.verify(ctx.state, ctx.principal)
        checkpoints = audit_api.checkpoints(ctx.state, ctx.principal, limit=5)["data"]
    return {
        "events": list(reversed(events)),
        "head": head,
        "newer_url": newer_url,
        "older_url": older_url,
        "owner": owner,
        "verification": verification,
        "checkpoints": checkpoints,
    }


def _url(params: dict[str, Any]) -> str:
    return "/governance/audit?" + urlencode(params)
