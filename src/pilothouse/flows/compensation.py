"""Compensation: when a run fails, undo the side effects of the steps that succeeded, newest first.

Each succeeded step with a `compensate` option gets its compensation step run once (with the run's current
state; its updates apply) and checkpointed (`compensated`, or `failed`; input `{"for_step", "for_seq"}`). A run
that crashes while compensating resumes here (it has its error but is still `running`) and skips the
compensations already recorded. A compensation that fails is reported in the run's error, and the others
still run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pilothouse.flows.attempts import close_span
from pilothouse.flows.spans import jsonable
from pilothouse.flows.steps.base import StepResult

if TYPE_CHECKING:
    from pilothouse.flows.run_exec import RunExecution


async def compensate(execution: RunExecution) -> list[str]:
    flow, run = execution.flow, execution.run
    if not any(node.options.compensate for node in flow.nodes.values()):
        return []
    history = execution.store.checkpoints(run.id)
    handled = {
        cp.input.get("for_seq")
        for cp in history
        if isinstance(cp.input, dict) and "for_seq" in cp.input and cp.status in ("compensated", "failed")
    }
    todo = [
        cp
        for cp in history
        if cp.status == "succeeded"
        and cp.item is None
        and cp.step in flow.nodes
        and flow.nodes[cp.step].options.compensate
        and cp.seq not in handled
    ]
    problems: list[str] = []
    for cp in reversed(todo):
        name = flow.nodes[cp.step].options.compensate
        assert name is not None
        node = flow.nodes[name]
        outcome = await execution.attempts(node)
        marker: dict[str, Any] = {"for_step": cp.step, "for_seq": cp.seq}
        if outcome.error is None and outcome.result is not None:
            try:
                execution.apply(outcome.result.updates)
            except (ValueError, TypeError) as exc:
                outcome.error = exc
        if outcome.error is not None:
            problems.append(f"{name} (for {cp.step}): {type(outcome.error).__name__}: {outcome.error}")
            close_span(outcome, input=marker)
            status = "failed"
            result = StepResult(input=marker)
        else:
            assert outcome.result is not None
            result = StepResult(input=marker, output=outcome.result.output)
            close_span(outcome, input=marker, output=jsonable(result.output))
            status = "compensated"
        outcome.span.attributes["pilothouse.step.compensates"] = cp.step
        async with execution.commit_lock:
            execution.budget.steps += 1
            error = execution.error_of(name, outcome.error) if outcome.error is not None else None
            checkpoint = execution.checkpoint(
                name, outcome, status=status, result=result, error=error, seq=execution.run.seq + 1
            )
            await execution.commit([checkpoint], run_status="running", error=execution.run.error, spans=[outcome.span])
    return problems
