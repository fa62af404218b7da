"""Running a map step: fan out over the items, each item its own checkpoint, then fan in.

Items run at most `concurrency` at a time. Each finished item is committed as a checkpoint of the map step with
`item` set (the state unchanged), so a run that crashes mid-map resumes with only the items that had not
finished: they are found as the trailing item checkpoints of the run. When every item is done the outputs, in
item order, are the map's state update (`into`). The first item that fails for good stops the others.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pilothouse.flows.attempts import Outcome, close_span
from pilothouse.flows.errors import NON_RETRYABLE, BudgetExceeded, MapItemFailed
from pilothouse.flows.graph import Node
from pilothouse.flows.spans import jsonable
from pilothouse.flows.steps.base import StepResult
from pilothouse.flows.steps.map import MapStep

if TYPE_CHECKING:
    from pilothouse.flows.run_exec import RunExecution


class _ItemError(Exception):
    def __init__(self, item: int, error: BaseException, outcome: Outcome | None) -> None:
        super().__init__(str(error))
        self.item = item
        self.error = error
        self.outcome = outcome


async def run_map(execution: RunExecution, node: Node) -> Outcome:
    step = node.step
    assert isinstance(step, MapStep)
    span = execution.new_span(node, None)
    started = time.time()
    try:
        items = step.items(execution.current_state())
    except Exception as exc:
        return Outcome(None, exc, 1, started, time.time(), span, [f"{type(exc).__name__}: {exc}"])
    span.attributes["pilothouse.map.items"] = len(items)
    done = finished_items(execution, node.name, len(items))
    span.attributes["pilothouse.map.resumed"] = len(done)
    body = execution.flow.nodes[step.body]
    outputs: dict[int, Any] = dict(done)
    gate = asyncio.Semaphore(step.concurrency)

    async def one(index: int) -> None:
        async with gate:
            try:
                execution.budget.check_step()
            except BudgetExceeded as exc:
                raise _ItemError(index, exc, None) from exc
            outcome = await execution.attempts(
                body, item_index=index, item=items[index], parent_span=span.id, visit_of=node.name
            )
            if outcome.error is not None or outcome.result is None:
                close_span(outcome, input=jsonable(items[index]))
                raise _ItemError(index, outcome.error or RuntimeError("no result"), outcome)
            output = jsonable(outcome.result.output)
            close_span(outcome, output=output, input=jsonable(items[index]))
            await execution.commit_item(node.name, outcome, StepResult(output=output, input=items[index]), index)
            outputs[index] = output

    missing = [i for i in range(len(items)) if i not in done]
    try:
        async with asyncio.TaskGroup() as group:
            for index in missing:
                group.create_task(one(index))
    except BaseExceptionGroup as grouped:
        others = [e for e in grouped.exceptions if not isinstance(e, _ItemError)]
        if others:
            raise others[0] from grouped
        first = min((e for e in grouped.exceptions if isinstance(e, _ItemError)), key=lambda e: e.item)
        error: BaseException = first.error
        if not isinstance(error, NON_RETRYABLE):
            error = MapItemFailed(
                f"item {first.item} of map {node.name!r} failed: {type(error).__name__}: {error}",
                item=first.item,
                cause=error,
            )
        attempts = first.outcome.attempts if first.outcome is not None else 0
        return Outcome(None, error, attempts, started, time.time(), span, [str(error)])
    values = [outputs[i] for i in range(len(items))]
    result = StepResult(updates={step.into: values}, output={"items": len(items), "resumed": len(done)})
    return Outcome(result, None, 1, started, time.time(), span)


def finished_items(execution: RunExecution, step: str, count: int) -> dict[int, Any]:
    """Outputs of this visit's items already committed: the run's trailing item checkpoints of `step`."""
    run = execution.run
    if count == 0 or run.seq == 0:
        return {}
    done: dict[int, Any] = {}
    for cp in reversed(execution.store.checkpoints(run.id, after_seq=max(0, run.seq - count))):
        if cp.step != step or cp.item is None:
            break
        if cp.status == "succeeded":
            done[cp.item] = cp.output
    return done
