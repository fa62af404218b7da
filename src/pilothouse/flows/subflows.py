"""Running a subflow step: a child run with its own checkpoints, created once, run to its end in this worker.

The child's id is recorded as the parent step's effect, so a parent resumed after a crash continues the same
child. A child's `flow` reference is the parent's with `#step` appended: a worker loads the part before the
first `#` and `Engine.execute` finds the child's Flow from it (`resolve_child`), so any worker can run a child.
The child's spend is charged to the parent's budget once it finishes.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from pilothouse.flows.attempts import Outcome
from pilothouse.flows.errors import FlowError
from pilothouse.flows.graph import Flow, Node
from pilothouse.flows.protocol import RunRecord
from pilothouse.flows.steps.base import StepResult
from pilothouse.flows.steps.subflow import SubflowStep

if TYPE_CHECKING:
    from pilothouse.flows.run_exec import RunExecution


def resolve_child(root: Flow, ref: str) -> Flow:
    """The flow a run reference names: `ref` is `<root ref>#step#step...`; the part before the first `#` is
    the root's own reference (already loaded as `root`)."""
    flow = root
    for step in ref.split("#")[1:]:
        node = flow.nodes.get(step)
        if node is None or not isinstance(node.step, SubflowStep):
            raise FlowError(f"flow {flow.name!r} has no subflow step {step!r} (run reference {ref!r})")
        flow = node.step.flow
    return flow


async def run_subflow(execution: RunExecution, node: Node) -> Outcome:
    step = node.step
    assert isinstance(step, SubflowStep)
    span = execution.new_span(node, None)
    started = time.time()
    try:
        child = await _run_child(execution, node, step)
        span.attributes["pilothouse.subflow.run_id"] = child.id
        if child.status != "succeeded":
            raise FlowError(_why(child))
        spent = child.spent
        execution.budget.charge(
            cost_usd=spent.get("cost_usd", "0"),
            tokens=int(spent.get("tokens", 0)),
            model_calls=int(spent.get("model_calls", 0)),
        )
        updates = {step.output: child.state} if step.output else {}
        result = StepResult(updates=updates, output={"run_id": child.id, "state": child.state})
        return Outcome(result, None, 1, started, time.time(), span)
    except Exception as exc:
        return Outcome(None, exc, 1, started, time.time(), span, [f"{type(exc).__name__}: {exc}"])


async def _run_child(execution: RunExecution, node: Node, step: SubflowStep) -> RunRecord:
    run, store, engine = execution.run, execution.store, execution.engine
    key = f"{run.id}/{node.name}#{execution.budget.visits.get(node.name, 0)}/subflow"
    child_id = store.effect(run.id, key)
    if child_id is None:
        child = engine.start(
            step.flow,
            step.child_input(execution.current_state()),
            project_id=run.project_id,
            ref=f"{run.flow}#{node.name}",
            parent_run_id=run.id,
            trace_id=run.trace_id,
            created_by=run.created_by,
        )
        store.record_effect(run.id, key, child.id)
        child_id = store.effect(run.id, key)
    record = await engine.run(step.flow, str(child_id))
    while record.status in ("queued", "running"):
        # another worker holds the child (it claimed it, or died holding it: then its lease expires and this
        # worker takes the child over); the step's timeout bounds the wait
        await asyncio.sleep(min(1.0, engine.lease_s / 3))
        record = await engine.run(step.flow, str(child_id))
    return record


def _why(child: RunRecord) -> str:
    if child.status == "waiting_for_approval":
        at = child.next_steps[0] if child.next_steps else "?"
        return (
            f"sub-flow run {child.id} waits for approval at step {at!r}: approval steps inside sub-flows are not "
            "supported; put the approval in the parent flow"
        )
    if child.error:
        err = child.error
        where = f"at step {err.get('step')!r}"
        return f"sub-flow run {child.id} {child.status} {where}: {err.get('cause')}: {err.get('message')}"
    return f"sub-flow run {child.id} ended {child.status}"
