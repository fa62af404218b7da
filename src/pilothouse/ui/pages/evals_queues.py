"""Evaluations pages for people in the loop: the annotation queues with their counts, and a queue's next task
with what to judge and the form that answers it.

Reads call the `/api/evals/queues` routes' own functions with the session's principal. `GET .../next` only reads
(it claims nothing), so the queue page shows the next open task on render; answering (or skipping) it is a
`POST /api/evals/queues/{name}/tasks/{id}` from the browser, after which the page reloads onto the next task.
Seeing a task needs the role that may answer it (service), as in the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from pilothouse.server.api import annotations as queues_api
from pilothouse.store.keys import role_at_least
from pilothouse.ui.context import UiDep, require_ui_role
from pilothouse.ui.render import page

router = APIRouter(include_in_schema=False)


@router.get("/evals/queues")
async def queues_page(ctx: UiDep) -> HTMLResponse:
    queues = await queues_api.list_queues(ctx.state, ctx.principal)
    return page(
        ctx,
        "evals/queues.html",
        title="Annotation queues",
        queues=queues,
        can_create=role_at_least(ctx.principal.role, "developer"),
        can_answer=role_at_least(ctx.principal.role, "service"),
    )


@router.get("/evals/queues/{name}")
async def queue_page(
    ctx: UiDep, name: str, assignee: Annotated[str | None, Query(max_length=200)] = None
) -> HTMLResponse:
    require_ui_role(ctx, "service")
    found = await queues_api.next_task(name, ctx.state, ctx.principal, assignee or None)
    listed = await queues_api.list_queues(ctx.state, ctx.principal)
    queue = next((q for q in listed if q["name"] == name), None)
    return page(
        ctx,
        "evals/queue.html",
        title=f"Queue {name}",
        name=name,
        queue=queue,
        task=found["task"],
        score=found["score"],
        show=found.get("show"),
        assignee=assignee or "",
        can_add=role_at_least(ctx.principal.role, "developer"),
    )
