"""One execution of one claimed run: the step loop behind `Engine.execute` (see engine.py)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from pilothouse.flows.attempts import Outcome, attempt, close_span
from pilothouse.flows.budget import RunBudget
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import BudgetExceeded, FlowError, LoopBoundExceeded
from pilothouse.flows.graph import Flow, Node
from pilothouse.flows.protocol import Checkpoint, RunRecord, RunStatus
from pilothouse.flows.spans import emit, jsonable, new_step_span
from pilothouse.flows.steps.base import StepResult
from pilothouse.tracing.model import SpanRecord

if TYPE_CHECKING:
    from pilothouse.flows.engine import Engine


class StepFailed(Exception):
    """Internal: a step failed for good; carries what the failed checkpoint records."""

    def __init__(self, step: str, error: BaseException, outcome: Outcome | None = None, item: int | None = None):
        super().__init__(str(error))
        self.step = step
        self.error = error
        self.outcome = outcome
        self.item = item


class RunExecution:
    def __init__(self, engine: Engine, flow: Flow, run: RunRecord) -> None:
        self.engine = engine
        self.store = engine.store
        self.flow = flow
        self.run = run
        self.budget = RunBudget(run.budget, run.spent)
        self.frontier: list[str] = list(run.next_steps)
        self.state_json: dict[str, Any] = dict(run.state)
        self.state: BaseModel | None = None
        self.commit_lock = asyncio.Lock()
        self.span_writes: list[asyncio.Task[None]] = []  # steps' spans on their way to the trace sink

    # -- the loop ------------------------------------------------------------------------------------------

    async def go(self) -> RunRecord:
        run = self.run
        if run.cancel_requested:
            return await self.finish_cancelled()
        if run.error is not None:  # failed before a crash, compensations not all done
            return await self.compensate_and_fail(run.error)
        try:
            self.state = self.flow.state.model_validate(run.state)
        except ValidationError as exc:
            step = self.frontier[0] if self.frontier else None
            return await self.fail(StepFailed(step or "(state)", FlowError(f"the run's state is invalid: {exc}")))
        approval = self.pending_approval()
        while self.frontier:
            name = self.frontier[0]
            node = self.flow.nodes.get(name)
            if node is None:
                return await self.fail(StepFailed(name, FlowError(f"step {name!r} is not in flow {self.flow.name!r}")))
            try:
                self.check_before(node)
                executed, outcome = await self.execute_node(node, approval)
            except StepFailed as failed:
                return await self.fail(failed)
            approval = None
            result = outcome.result
            assert result is not None
            if result.wait_for_approval:
                close_span(outcome, output=jsonable(result.output))
                return await self.commit_one(
                    executed, outcome, result, status="waiting", run_status="waiting_for_approval"
                )
            try:
                self.apply(result.updates)
                following, decision = self.flow.next_steps(name, self.current_state())
            except (ValidationError, ValueError, TypeError) as exc:
                close_span(outcome, output=jsonable(result.output))
                return await self.fail(StepFailed(executed, exc, outcome))
            if decision is not None:
                result = StepResult(
                    updates=result.updates,
                    output=result.output,
                    input=result.input,
                    decision={**(result.decision or {}), **decision},
                )
            rest = self.frontier[1:]
            self.frontier = rest + [s for s in following if s not in rest]
            self.count_visit(name)
            close_span(outcome, output=jsonable(result.output), input=jsonable(result.input))
            if result.decision:
                outcome.span.attributes["pilothouse.step.decision"] = jsonable(result.decision)
            record = await self.commit_one(
                executed, outcome, result, status="succeeded", run_status="running" if self.frontier else "succeeded"
            )
            if record.cancel_requested and self.frontier:
                return await self.finish_cancelled()
        if self.run.status == "running":  # resumed with nothing left to run
            async with self.commit_lock:
                return await self.commit([], run_status="succeeded")
        return self.run

    def pending_approval(self) -> dict[str, Any] | None:
        """The decision a person made on the step the run resumes at (the run's last checkpoint): an approval
        step, or any step that asked for one (a risky tool call)."""
        if not self.frontier or self.run.seq == 0:
            return None
        last = self.store.checkpoints(self.run.id, after_seq=self.run.seq - 1)
        if not last or last[-1].step != self.frontier[0] or last[-1].status not in ("approved", "rejected"):
            return None
        output = last[-1].output if isinstance(last[-1].output, dict) else {}
        return {"decision": last[-1].status, "actor": output.get("actor"), "comment": output.get("comment")}

    def check_before(self, node: Node) -> None:
        try:
            self.budget.check_step()
            bound = self.flow.bounds.get(node.name)
            if bound is not None and self.budget.visits.get(node.name, 0) >= bound:
                raise LoopBoundExceeded(f"step {node.name!r} reached its loop bound ({bound} visits)")
        except (BudgetExceeded, LoopBoundExceeded) as exc:
            raise StepFailed(node.name, exc) from exc

    def current_state(self) -> BaseModel:
        assert self.state is not None
        return self.state

    def apply(self, updates: dict[str, Any]) -> None:
        if not updates:
            return
        if not isinstance(updates, dict):
            raise TypeError(f"state updates must be a dict, got {type(updates).__name__}")
        unknown = [k for k in updates if k not in self.flow.state.model_fields]
        if unknown:
            raise ValueError(f"updates name fields the state {self.flow.state.__name__} does not have: {unknown}")
        merged = {**self.current_state().model_dump(), **updates}
        self.state = self.flow.state.model_validate(merged)
        self.state_json = self.state.model_dump(mode="json")

    def count_visit(self, name: str) -> None:
        if name in self.flow.cyclic:
            self.budget.visits[name] = self.budget.visits.get(name, 0) + 1

    # -- running one node ----------------------------------------------------------------------------------

    async def execute_node(self, node: Node, approval: dict[str, Any] | None) -> tuple[str, Outcome]:
        """Run a step with its policy; a fallback replaces it when it fails. Returns the step that produced the
        result (the fallback's name when it ran) and its outcome."""
        kind = node.step.kind
        if kind == "map":
            from pilothouse.flows.fanout import run_map

            outcome = await run_map(self, node)
        elif kind == "subflow":
            from pilothouse.flows.subflows import run_subflow

            outcome = await run_subflow(self, node)
        else:
            outcome = await self.attempts(node, approval=approval)
        if outcome.error is None:
            return node.name, outcome
        fallback = node.options.fallback
        if fallback is None or isinstance(outcome.error, BudgetExceeded | LoopBoundExceeded):
            raise StepFailed(node.name, outcome.error, outcome)
        close_span(outcome)
        await self.commit_failed(node.name, outcome, run_status="running", error=None)
        backup = self.flow.nodes[fallback]
        second = await self.attempts(backup, visit_of=node.name)
        if second.error is not None:
            raise StepFailed(fallback, second.error, second)
        second.span.attributes["pilothouse.step.fallback_for"] = node.name
        return fallback, second

    async def attempts(
        self,
        node: Node,
        *,
        approval: dict[str, Any] | None = None,
        item_index: int | None = None,
        item: Any = None,
        parent_span: str | None = None,
        visit_of: str | None = None,
    ) -> Outcome:
        span = self.new_span(node, parent_span)
        if item_index is not None:
            span.attributes["pilothouse.step.item"] = item_index
        state = self.current_state()
        visit = self.budget.visits.get(visit_of or node.name, 0)

        async def once(number: int) -> StepResult:
            ctx = self.context(
                node.name, number, span, visit=visit, approval=approval, item_index=item_index, item=item
            )
            return await node.step.run(state, ctx)

        started = time.monotonic()
        outcome = await attempt(
            once,
            name=node.name,
            options=node.options,
            span=span,
            wall_left=self.budget.wall_left,
            sleep=self.engine.sleep,
        )
        self.budget.wall_s += time.monotonic() - started
        return outcome

    def new_span(self, node: Node, parent: str | None) -> SpanRecord:
        return new_step_span(
            trace_id=self.run.trace_id,
            project_id=self.run.project_id,
            step=node.name,
            kind=node.step.kind,
            run_id=self.run.id,
            flow_name=self.flow.name,
            parent_id=parent,
        )

    def context(
        self,
        step: str,
        number: int,
        span: SpanRecord,
        *,
        visit: int = 0,
        approval: dict[str, Any] | None = None,
        item_index: int | None = None,
        item: Any = None,
    ) -> StepContext:
        return StepContext(
            run_id=self.run.id,
            step=step,
            attempt=number,
            project_id=self.run.project_id,
            flow_name=self.flow.name,
            trace_id=self.run.trace_id,
            span=span,
            budget=self.budget,
            store=self.store,
            models=self.engine.models,
            tools=self.engine.tools,
            retrieval=self.engine.retrieval,
            visit=visit,
            item_index=item_index,
            item=item,
            created_by=self.run.created_by,
            approval=approval,
        )

    # -- commits -------------------------------------------------------------------------------------------

    def checkpoint(
        self,
        step: str,
        outcome: Outcome,
        *,
        status: Any,
        result: StepResult | None = None,
        error: dict[str, Any] | None = None,
        item: int | None = None,
        seq: int,
    ) -> Checkpoint:
        return Checkpoint(
            run_id=self.run.id,
            seq=seq,
            step=step,
            attempt=outcome.attempts,
            status=status,
            input=jsonable(result.input) if result is not None else None,
            output=jsonable(result.output) if result is not None else None,
            state_after=self.state_json,
            decision=jsonable(result.decision) if result is not None and result.decision else None,
            error=error,
            started_at=outcome.started_at,
            ended_at=outcome.ended_at,
            cost_usd=float(outcome.span.cost_usd or 0),
            tokens=(outcome.span.input_tokens or 0) + (outcome.span.output_tokens or 0),
            span_id=outcome.span.id,
            item=item,
        )

    async def commit(
        self,
        checkpoints: list[Checkpoint],
        *,
        run_status: RunStatus,
        error: dict[str, Any] | None = None,
        spans: list[SpanRecord] | None = None,
    ) -> RunRecord:
        record = await self.engine.store_call(
            self.store.commit_step,
            self.run.id,
            self.engine.worker,
            checkpoints,
            state=self.state_json,
            next_steps=tuple(self.frontier),
            status=run_status,
            spent=self.budget.spent(),
            error=error,
        )
        self.run = record
        if spans and self.engine.tracer is not None:  # written in the background: a step never waits for it
            self.span_writes.append(
                asyncio.create_task(emit(self.engine.tracer, flow_name=self.flow.name, spans=spans))
            )
        return record

    async def flush(self) -> None:
        """Wait until every span written so far is stored (called when the execution ends, however it ends)."""
        writes, self.span_writes = self.span_writes, []
        if writes:
            await asyncio.gather(*writes, return_exceptions=True)

    async def commit_one(
        self, step: str, outcome: Outcome, result: StepResult, *, status: Any, run_status: RunStatus
    ) -> RunRecord:
        async with self.commit_lock:
            self.budget.steps += 1
            cp = self.checkpoint(step, outcome, status=status, result=result, seq=self.run.seq + 1)
            return await self.commit([cp], run_status=run_status, spans=[outcome.span])

    async def commit_item(self, step: str, outcome: Outcome, result: StepResult, item: int) -> RunRecord:
        async with self.commit_lock:
            self.budget.steps += 1
            cp = self.checkpoint(step, outcome, status="succeeded", result=result, item=item, seq=self.run.seq + 1)
            return await self.commit([cp], run_status="running", spans=[outcome.span])

    async def commit_failed(
        self,
        step: str,
        outcome: Outcome,
        *,
        run_status: RunStatus,
        error: dict[str, Any] | None,
        item: int | None = None,
    ) -> RunRecord:
        async with self.commit_lock:
            self.budget.steps += 1
            message = error or self.error_of(step, outcome.error)
            cp = self.checkpoint(step, outcome, status="failed", error=message, item=item, seq=self.run.seq + 1)
            return await self.commit([cp], run_status=run_status, error=error, spans=[outcome.span])

    def error_of(self, step: str, exc: BaseException | None) -> dict[str, Any]:
        return {
            "step": step,
            "cause": type(exc).__name__ if exc is not None else "Error",
            "message": str(exc) if exc is not None else "",
            "state": self.state_json,
        }

    # -- endings -------------------------------------------------------------------------------------------

    async def fail(self, failed: StepFailed) -> RunRecord:
        """Record the failed step with the terminal error, then compensate and end the run `failed`."""
        error = self.error_of(failed.step, failed.error)
        if failed.outcome is not None:
            error["attempts"] = failed.outcome.attempts
            if failed.item is not None:
                error["item"] = failed.item
            if failed.outcome.span.ended_at is None:
                close_span(failed.outcome)
            await self.commit_failed(failed.step, failed.outcome, run_status="running", error=error, item=failed.item)
        else:
            async with self.commit_lock:
                await self.commit([], run_status="running", error=error)
        return await self.compensate_and_fail(error)

    async def compensate_and_fail(self, error: dict[str, Any]) -> RunRecord:
        from pilothouse.flows.compensation import compensate

        if self.state is None:
            try:
                self.state = self.flow.state.model_validate(self.state_json)
            except ValidationError:
                self.state = None
        problems = await compensate(self) if self.state is not None else []
        if problems:
            error = {**error, "compensation_errors": problems}
        self.frontier = []
        async with self.commit_lock:
            return await self.commit([], run_status="failed", error=error)

    async def finish_cancelled(self) -> RunRecord:
        self.frontier = []
        async with self.commit_lock:
            return await self.commit([], run_status="cancelled")
