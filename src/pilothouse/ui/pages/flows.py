"""Dashboard section 'Workflows': flow runs, each run's graph and the path it took, approvals.

Pages read through the flow API's own functions (server/api/flows.py, which call flows/service.py), so the
roles and the project are checked exactly as the API checks them. Every action on a run (approve, reject,
cancel, resume) is a form posting to that API from the browser (static/pilothouse.js), authorised and audited
there. A run that is still moving refreshes its status and path without a reload (`/flows/runs/{id}/live`).
"""

from __future__ import annotations

from typing import Annotated, Any, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from pilothouse.errors import ApiError, InvalidRequest
from pilothouse.flows.errors import FlowError
from pilothouse.flows.loading import root_ref
from pilothouse.flows.protocol import TERMINAL, Checkpoint
from pilothouse.flows.service import FlowService
from pilothouse.flows.subflows import resolve_child
from pilothouse.server.api import flows as flows_api
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.keys import role_at_least
from pilothouse.ui.context import UiContext, UiDep
from pilothouse.ui.pages.flows_graph import RunGraph, checkpoints_from, path_rows, run_graph
from pilothouse.ui.render import fragment, page

router = APIRouter(include_in_schema=False)

PAGE = 50
STATUSES: tuple[str, ...] = get_args(flows_api.Status)
RunId = Annotated[str, Path(min_length=1, max_length=40)]


def _status(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in STATUSES:
        raise InvalidRequest(f"unknown status {value!r}; choose one of {', '.join(STATUSES)}", param="status")
    return value


@router.get("/flows")
async def runs_page(
    ctx: UiDep,
    status: Annotated[str | None, Query(max_length=40)] = None,
    flow: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Runs newest first; with no filter, the runs waiting for a person's approval come first."""
    values = await _runs(ctx, status, flow, before)
    return page(ctx, "flows/runs.html", title="Workflows", statuses=STATUSES, **values)


@router.get("/flows/live")
async def runs_live(
    ctx: UiDep,
    status: Annotated[str | None, Query(max_length=40)] = None,
    flow: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The runs table alone, for the list's live refresh."""
    return fragment(ctx, "flows/_runs_table.html", **await _runs(ctx, status, flow, before))


async def _runs(ctx: UiContext, status: str | None, flow: str | None, before: str | None) -> dict[str, Any]:
    wanted = _status(status)
    flow_name = flow or None
    before_id = before or None
    listed = runs = await _list(ctx, wanted, flow_name, PAGE, before_id)
    waiting: list[dict[str, Any]] = []
    if wanted is None and before_id is None:
        waiting = await _list(ctx, "waiting_for_approval", flow_name, PAGE, None)
        shown = {r["id"] for r in waiting}
        runs = [r for r in runs if r["id"] not in shown]
    next_url = None
    if len(listed) == PAGE:
        params = {k: v for k, v in (("status", wanted), ("flow", flow_name)) if v}
        next_url = "/flows?" + urlencode({**params, "before": listed[-1]["id"]})
    return {
        "waiting": waiting,
        "runs": runs,
        "status": wanted or "",
        "flow": flow_name or "",
        "next_url": next_url,
        "first_url": "/flows" if before_id else None,
    }


async def _list(
    ctx: UiContext, status: str | None, flow: str | None, limit: int, before: str | None
) -> list[dict[str, Any]]:
    listed = await flows_api.list_runs(
        ctx.state, ctx.principal, status=cast(flows_api.Status | None, status), flow=flow, limit=limit, before=before
    )
    return list(listed["data"])


@router.get("/flows/runs/{run_id}")
async def run_page(run_id: RunId, ctx: UiDep) -> HTMLResponse:
    """One run: its state, the graph with the path taken, the decision path, and what may be done with it."""
    shown = await flows_api.show_run(run_id, ctx.state, ctx.principal)
    run = shown["run"]
    checkpoints = checkpoints_from(shown["checkpoints"])
    graph, graph_error = _graph(ctx, run, checkpoints)
    waiting_at = run["next_steps"][0] if run["status"] == "waiting_for_approval" and run["next_steps"] else None
    return page(
        ctx,
        "flows/run.html",
        title=f"Run {run['id']}",
        run=run,
        graph=graph,
        graph_error=graph_error,
        waiting_at=waiting_at,
        may_act=role_at_least(ctx.principal.role, "developer"),
        live=run["status"] not in TERMINAL,
        **_live_values(checkpoints),
    )


@router.get("/flows/runs/{run_id}/live")
async def run_live(run_id: RunId, ctx: UiDep) -> HTMLResponse:
    """The moving part of a run's page (status, spend, path), for its live refresh."""
    shown = await flows_api.show_run(run_id, ctx.state, ctx.principal)
    run = shown["run"]
    return fragment(ctx, "flows/_run_live.html", run=run, **_live_values(checkpoints_from(shown["checkpoints"])))


def _live_values(checkpoints: list[Checkpoint]) -> dict[str, Any]:
    return {"path": path_rows(checkpoints), "pruned": bool(checkpoints) and checkpoints[0].seq > 1}


def _graph(ctx: UiContext, run: dict[str, Any], checkpoints: list[Checkpoint]) -> tuple[RunGraph | None, str | None]:
    """The run's flow graph, loaded as the workers load it; the reason instead when it cannot be (the file
    moved or no longer defines the flow): the page still shows the path from the checkpoints."""
    try:
        root, _ = FlowService(SqlCheckpointStore(ctx.state.store)).load(root_ref(run["flow"]))
        flow = resolve_child(root, run["flow"])
    except (ApiError, FlowError) as exc:
        return None, str(exc)
    return run_graph(flow, checkpoints, run["status"]), None
