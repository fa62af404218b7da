"""/api/flows: durable workflow runs (docs/flows.md).

Starting a run loads the flow's Python file or module on the server, so it needs the admin role; approving,
rejecting, cancelling and resuming need the developer role; reading the viewer role; all within the key's
project. The per-workflow kill switch is an admin action, pruning (every project's runs) the owner's. The
runs execute on the server's flow worker (flows/worker.py), started with the server; other workers may share
the same database.
Approvals, rejections, cancellations, kill switches and prunes are audit events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.audit.chain import append_event
from pilothouse.flows.calls import GatewayModelCalls
from pilothouse.flows.engine import Engine
from pilothouse.flows.service import FlowService, run_view
from pilothouse.flows.steps.retrieve import RagRetrieval
from pilothouse.flows.tools_runtime import ToolRuntime
from pilothouse.flows.worker import Worker
from pilothouse.principal import Principal
from pilothouse.rag.querying import RagQueries
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store.flows import SqlCheckpointStore

router = APIRouter(prefix="/api/flows", tags=["flows"])

Status = Literal["queued", "running", "waiting_for_approval", "succeeded", "failed", "cancelled"]
RunId = Annotated[str, Path(min_length=1, max_length=40, description="The run's id (run_...).")]


class RunStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: str = Field(
        min_length=3,
        max_length=500,
        description="The flow: /absolute/path/file.py:attr (on the server's machine) or package.module:attr.",
    )
    input: dict[str, Any] = Field(default_factory=dict, description="The run's input: the state's initial fields.")
    budget: dict[str, Any] = Field(
        default_factory=dict, description="Limits over the flow's own: cost_usd, tokens, model_calls, steps, wall_s."
    )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: str = Field(min_length=1, max_length=200, description="The approval step the run waits at.")
    comment: str | None = Field(default=None, max_length=2000)


class Approve(Decision):
    state: dict[str, Any] | None = Field(
        default=None, description="Edits of the run's state applied with the approval (validated by the flow)."
    )


class Prune(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_last: int | None = Field(default=None, ge=0, le=1_000_000, description="Keep each run's last N checkpoints.")
    older_than_days: float | None = Field(
        default=None, ge=0, le=36_500, description="Delete finished runs older than this."
    )


class Switch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="false: the flow's runs are not picked up and new runs are refused.")
    reason: str | None = Field(default=None, max_length=500)


@dataclass(slots=True)
class _Running:
    worker: Worker
    stop: asyncio.Event
    task: asyncio.Task[None]


_WORKERS: dict[int, _Running] = {}
"""The flow worker of each server state in this process (one per app)."""


def _service(state: AppState) -> FlowService:
    """The service over the state's store, with the state's worker started (in this event loop) to wake."""
    running = start_flow_worker(state)
    return FlowService(SqlCheckpointStore(state.store), wake=running.worker.wake)


def flow_engine(state: AppState, *, lease_s: float = 30.0) -> Engine:
    """An engine over the state's store whose steps call models through the state's gateway pipeline (source
    `flow`), tools through the projects' tool rules and retrievals through the RAG query service, each step,
    tool call and retrieval a span in the trace sink: the server's worker and `pilothouse flow worker` alike."""
    return Engine(
        SqlCheckpointStore(state.store),
        lease_s=lease_s,
        tracer=state.sink,
        models=GatewayModelCalls(state.pipeline),
        tools=ToolRuntime(rules=state.tools, audit=state.admission.audit, tracer=state.sink),
        retrieval=RagRetrieval(
            state.pipeline.services.rag or RagQueries(state.store, state.settings.data_dir), tracer=state.sink
        ),
    )


def start_flow_worker(state: AppState) -> _Running:
    """Start the state's flow worker in the running event loop unless it runs: at start-up, so runs a stopped
    server left behind continue, or with the first request here."""
    running = _WORKERS.get(id(state))
    if running is None or running.task.done():
        engine = flow_engine(state)
        worker = Worker(engine.store, engine)
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(worker.serve(stop), name="pilothouse-flow-worker")
        running = _WORKERS[id(state)] = _Running(worker, stop, task)
    return running


async def stop_flow_worker(state: AppState) -> None:
    """Stop the state's worker (its runs keep their last checkpoint and are released to other workers)."""
    running = _WORKERS.pop(id(state), None)
    if running is not None:
        running.stop.set()
        await running.task


def _audit(state: AppState, principal: Principal, action: str, target: str, details: dict[str, Any]) -> None:
    with state.store.begin() as conn:
        append_event(
            conn, actor=principal.key_id, action=action, target=target, project_id=principal.project_id, details=details
        )


@router.post("/runs")
async def start_run(body: RunStart, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Start a run; it executes on a worker. Returns the run (`id`, `status` queued)."""
    require_role(principal, "admin")
    service = _service(state)
    run = await asyncio.to_thread(
        service.start_run,
        principal.project_id,
        body.flow,
        body.input,
        budget=body.budget,
        created_by=principal.key_id,
    )
    return run_view(run)


@router.get("/runs")
async def list_runs(
    state: StateDep,
    principal: PrincipalDep,
    status: Annotated[Status | None, Query(description="Only runs in this status.")] = None,
    flow: Annotated[str | None, Query(min_length=1, max_length=100, description="Only runs of this flow.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(min_length=1, max_length=40, description="Page on from this run id.")] = None,
) -> dict[str, Any]:
    """The project's runs, newest first."""
    service = _service(state)
    runs = await asyncio.to_thread(
        service.list, principal.project_id, status=status, flow_name=flow, limit=limit, before=before
    )
    return {"data": [run_view(r) for r in runs]}


@router.get("/runs/{run_id}")
async def get_run(run_id: RunId, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    service = _service(state)
    return run_view(await asyncio.to_thread(service.get, principal.project_id, run_id))


@router.get("/runs/{run_id}/path")
async def show_run(run_id: RunId, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The run, its decision path (each step, the branch taken and why, approvals, errors) and checkpoints."""
    service = _service(state)
    return await asyncio.to_thread(service.show, principal.project_id, run_id)


@router.post("/runs/{run_id}/approve")
async def approve_run(run_id: RunId, body: Approve, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Approve the run waiting at `step` (with optional state edits); recorded in the audit log."""
    require_role(principal, "developer")
    service = _service(state)
    run = await asyncio.to_thread(
        service.decide,
        principal.project_id,
        run_id,
        step=body.step,
        decision="approved",
        actor=principal.key_id,
        comment=body.comment,
        state_edits=body.state,
    )
    return run_view(run)


@router.post("/runs/{run_id}/reject")
async def reject_run(run_id: RunId, body: Decision, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Reject the run waiting at `step`: it ends failed (after its compensation steps); audited."""
    require_role(principal, "developer")
    service = _service(state)
    run = await asyncio.to_thread(
        service.decide,
        principal.project_id,
        run_id,
        step=body.step,
        decision="rejected",
        actor=principal.key_id,
        comment=body.comment,
    )
    return run_view(run)


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: RunId, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The kill switch of one run: a queued or waiting run is cancelled at once, a running one before its next
    step."""
    require_role(principal, "developer")
    service = _service(state)
    run = await asyncio.to_thread(service.cancel, principal.project_id, run_id)
    await asyncio.to_thread(_audit, state, principal, "flow.cancel", run_id, {"flow": run.flow_name})
    return run_view(run)


@router.post("/runs/{run_id}/resume")
async def resume_run(run_id: RunId, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Continue a run from its last checkpoint (a failed run, or one whose worker died)."""
    require_role(principal, "developer")
    service = _service(state)
    return run_view(await asyncio.to_thread(service.resume, principal.project_id, run_id))


@router.post("/prune")
async def prune_runs(body: Prune, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Retention of finished runs, of every project (the storage is shared): the owner's."""
    require_role(principal, "owner")
    service = _service(state)
    deleted = await asyncio.to_thread(service.prune, keep_last=body.keep_last, older_than_days=body.older_than_days)
    await asyncio.to_thread(_audit, state, principal, "flow.prune", "flows", {**body.model_dump(), "deleted": deleted})
    return {"deleted": deleted}


@router.put("/switches/{flow_name}")
async def switch_flow(
    flow_name: Annotated[str, Path(min_length=1, max_length=100)],
    body: Switch,
    state: StateDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """The kill switch of a workflow (audited)."""
    require_role(principal, "admin")
    service = _service(state)
    return await asyncio.to_thread(
        service.set_enabled,
        principal.project_id,
        flow_name,
        body.enabled,
        reason=body.reason,
        actor=principal.key_id,
    )
