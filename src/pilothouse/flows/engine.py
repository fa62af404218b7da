"""The engine: executes one run, step by step, checkpointing each step before the next starts.

    engine = Engine(store, worker="w1", models=..., tools=..., tracer=sink)
    run = engine.start(flow, {"amount": 120}, project_id="p1", ref="examples/flows/approval_demo.py:flow")
    run = await engine.run(flow, run.id)   # claims it, runs until it ends or waits for approval

A worker (flows/worker.py) claims runs from the store and calls `execute(flow, run)`. While a run executes the
engine renews its lease in the background; a lease that cannot be renewed (another worker took the run over)
stops the run here with `LeaseLost`, and every commit is fenced by the lease and the checkpoint's seq, so two
workers never both record a step.

For each step of the frontier (`next_steps`): the budget and loop bound are checked, the step runs with its
retry policy and timeout (a fallback step replaces it when it still fails), its updates are validated against
the state model, the next steps are picked (a branch's condition value is recorded as the decision), and one
fenced commit records the checkpoint, the new state, frontier and spend. An approval step commits `waiting` and
ends the execution (`waiting_for_approval`). A failure commits the failed step with the terminal error
(`{"step", "cause", "message", "state"}`), then runs the compensation steps of the steps that succeeded, in
reverse order, and ends the run `failed`. A kill switch (`cancel_requested`, seen on each commit) ends it
`cancelled` before its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from pilothouse.flows.attempts import Sleep
from pilothouse.flows.budget import check_limits
from pilothouse.flows.context import ModelCalls, NoModelCalls, NoRetrievalCalls, NoToolCalls, RetrievalCalls, ToolCalls
from pilothouse.flows.errors import FlowChanged, FlowInputError
from pilothouse.flows.graph import Flow
from pilothouse.flows.protocol import TERMINAL, CheckpointStore, LeaseLost, NewRun, RunRecord
from pilothouse.flows.run_exec import RunExecution
from pilothouse.flows.spans import SpanWriter
from pilothouse.flows.subflows import resolve_child
from pilothouse.store.ids import new_trace_id

__all__ = ["Engine", "LeaseLost"]

log = logging.getLogger("pilothouse.flows")
T = TypeVar("T")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


class Engine:
    """Runs flows against a CheckpointStore (see the module docstring)."""

    def __init__(
        self,
        store: CheckpointStore,
        *,
        worker: str | None = None,
        lease_s: float = 30.0,
        tracer: SpanWriter | None = None,
        models: ModelCalls | None = None,
        tools: ToolCalls | None = None,
        retrieval: RetrievalCalls | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.store = store
        self.worker = worker or default_worker_id()
        self.lease_s = lease_s
        self.tracer = tracer
        self.models: ModelCalls = models or NoModelCalls()
        self.tools: ToolCalls = tools or NoToolCalls()
        self.retrieval: RetrievalCalls = retrieval or NoRetrievalCalls()
        self.sleep = sleep
        self.executing = 0  # runs this engine executes now (a worker runs several at once)

    # -- runs ----------------------------------------------------------------------------------------------

    def new_run(
        self,
        flow: Flow,
        input: Mapping[str, Any],
        *,
        project_id: str,
        ref: str | None = None,
        budget: Mapping[str, Any] | None = None,
        created_by: str | None = None,
        trace_id: str | None = None,
        parent_run_id: str | None = None,
        replay_of: str | None = None,
        state: Mapping[str, Any] | None = None,
        next_steps: tuple[str, ...] | None = None,
    ) -> NewRun:
        """The record of a new run of `flow` (validated: FlowInputError for an input the state model refuses,
        ValueError for a bad budget)."""
        flow.build()
        if not isinstance(input, Mapping):
            raise FlowInputError(f"flow {flow.name!r}: the input must be a JSON object")
        try:
            model = flow.state.model_validate(dict(state if state is not None else input))
        except ValidationError as exc:
            raise FlowInputError(
                f"flow {flow.name!r}: input does not fit {flow.state.__name__}: {_errors(exc)}"
            ) from exc
        limits = {**flow.budget, **check_limits(budget or {})}
        assert flow.start_step is not None
        return NewRun(
            project_id=project_id,
            flow=ref or flow.name,
            flow_name=flow.name,
            flow_hash=flow.hash,
            input=dict(input),
            state=model.model_dump(mode="json"),
            next_steps=next_steps if next_steps is not None else (flow.start_step,),
            budget=limits,
            trace_id=trace_id or new_trace_id(),
            parent_run_id=parent_run_id,
            created_by=created_by,
            replay_of=replay_of,
        )

    def start(self, flow: Flow, input: Mapping[str, Any], *, project_id: str, **options: Any) -> RunRecord:
        """Create a queued run of `flow` (a worker, or `run`, executes it)."""
        return self.store.create_run(self.new_run(flow, input, project_id=project_id, **options))

    async def run(self, flow: Flow, run_id: str) -> RunRecord:
        """Claim run `run_id` and execute it until it finishes or waits. A run that cannot be claimed (finished,
        waiting for approval, or held by a live worker) is returned as it is."""
        claimed = self.store.claim(self.worker, lease_s=self.lease_s, run_id=run_id)
        if claimed is None:
            current = self.store.get_run(run_id)
            if current is None:
                raise LookupError(f"run {run_id} does not exist")
            return current
        return await self.execute(flow, claimed)

    async def execute(self, flow: Flow, run: RunRecord) -> RunRecord:
        """Execute a run this engine's worker has claimed; returns the run as last committed. Raises
        `LeaseLost` when the run was taken over by another worker meanwhile, `FlowChanged` (the lease given
        back) when `flow` is not the graph the run started with. For a sub-flow's run (`ref#step`), `flow` may
        be the root flow its reference names before the `#`."""
        if "#" in run.flow and flow.name != run.flow_name:  # a sub-flow's run, given its root flow
            flow = resolve_child(flow, run.flow)
        flow.build()
        if run.status in TERMINAL:
            return run
        if run.flow_hash != flow.hash:
            self.store.release(run.id, self.worker)
            raise FlowChanged(
                f"flow {flow.name!r} changed since run {run.id} started (graph {run.flow_hash}, now {flow.hash}): "
                "resume it with the flow it started with, or replay it"
            )
        execution = RunExecution(self, flow, run)
        self.executing += 1
        renewer = asyncio.create_task(self._renew(run.id, asyncio.current_task()), name=f"lease {run.id}")
        try:
            return await execution.go()
        except asyncio.CancelledError:
            if renewer.done() and not renewer.cancelled() and renewer.result() is False:
                raise LeaseLost(f"run {run.id}: the lease was lost (another worker took the run over)") from None
            raise
        finally:
            self.executing -= 1
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await execution.flush()

    async def store_call(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call the (synchronous) store: in the calling thread while this engine executes a single run (a thread
        hop would only add to its per-step time), off the event loop while it executes several, so their store
        calls overlap instead of queueing behind one another."""
        if self.executing > 1:
            return await asyncio.to_thread(call, *args, **kwargs)
        return call(*args, **kwargs)

    async def _renew(self, run_id: str, main: asyncio.Task[Any] | None) -> bool:
        """Renew the lease every third of its length; when that fails, cancel the execution (returns False)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                held = await asyncio.to_thread(self.store.renew, run_id, self.worker, lease_s=self.lease_s)
            except Exception:
                log.exception("renewing the lease on run %s failed; trying again", run_id)
                continue
            if not held:
                log.warning("run %s: lease lost by worker %s", run_id, self.worker)
                if main is not None:
                    main.cancel()
                return False


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "input"
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts)
