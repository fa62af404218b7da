"""A tool step: one registered tool (`@flow_tool`) called with `args(state)`; its result into the state.

The call takes the tool runtime's one path (flows/tools_runtime.py): permission, argument validation, timeout,
an idempotency key (a retried or resumed step reuses the recorded result instead of repeating the side
effect), and the indirect-injection scan of the output. A `high`-risk tool pauses the run for a person's
approval (`waiting_for_approval`, as an approval step does); once approved, the step runs the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import ApprovalRejected, FlowDefinitionError, FlowError
from pilothouse.flows.steps.base import StepResult
from pilothouse.flows.tools_runtime import OutputAction, ToolOutputBlocked, ToolRefused, ToolRuntime

StateFn = Callable[[Any], Any]


def runtime_of(ctx: StepContext) -> ToolRuntime:
    """The engine's tool runtime; a clear error when the engine was built without one."""
    if not isinstance(ctx.tools, ToolRuntime):
        raise FlowError(
            f"step {ctx.step!r} calls tools, but this engine has no tool runtime: build the Engine with "
            "tools=ToolRuntime(...) (pilothouse.flows.tools_runtime)"
        )
    return ctx.tools


class ToolStep:
    kind: ClassVar[str] = "tool"

    def __init__(
        self,
        *,
        tool: str,
        args: StateFn | Mapping[str, Any] | None = None,
        output: str | None = None,
        on_injection: OutputAction = "block",
    ) -> None:
        if not isinstance(tool, str) or not tool:
            raise FlowDefinitionError("a tool step needs tool='name' (a function registered with @flow_tool)")
        if on_injection not in ("block", "flag"):
            raise FlowDefinitionError(f"on_injection must be 'block' or 'flag', not {on_injection!r}")
        self.tool = tool
        self.args = args
        self.output = output
        self.on_injection: OutputAction = on_injection

    def arguments(self, state: BaseModel) -> dict[str, Any]:
        args = self.args(state) if callable(self.args) else dict(self.args or {})
        if isinstance(args, BaseModel):
            args = args.model_dump(mode="json")
        if not isinstance(args, Mapping):
            raise TypeError(f"args(state) returned {type(args).__name__}: it must return a dict of arguments")
        return dict(args)

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        runtime = runtime_of(ctx)
        args = self.arguments(state)
        tool = runtime.registry.get(self.tool)
        approval = ctx.approval
        if approval is None and tool is not None and tool.risk == "high":
            approval = await asyncio.to_thread(pending_decision, ctx)
        if approval is not None and approval.get("decision") != "approved":
            why = f": {approval['comment']}" if approval.get("comment") else ""
            raise ApprovalRejected(
                f"the call of tool {self.tool!r} at step {ctx.step!r} was rejected by {approval.get('actor')}{why}"
            )
        try:
            result = await runtime.call_in(
                ctx,
                self.tool,
                args,
                allowed=(self.tool,),
                on_injection=self.on_injection,
                approved=approval is not None,
            )
        except ToolRefused as refusal:
            if refusal.needs_approval and approval is None:
                ctx.span.attributes["pilothouse.tool.approval_required"] = True
                asked = {"approval_required": refusal.decision.to_dict(), "tool": self.tool, "arguments": args}
                return StepResult(output=asked, input={"tool": self.tool, "arguments": args}, wait_for_approval=True)
            raise
        ctx.span.attributes.update(result.span_attributes())
        if result.withheld:
            raise ToolOutputBlocked(result.model_text(), tool=self.tool, details=result.screening.to_dict())
        updates = {self.output: result.output} if self.output else {}
        output = {"result": result.output, "reused": result.reused, "idempotency_key": result.key}
        if approval is not None:
            output["approved_by"] = approval.get("actor")
        return StepResult(updates=updates, output=output, input={"tool": self.tool, "arguments": args})


def pending_decision(ctx: StepContext) -> dict[str, Any] | None:
    """The decision a person made on this step while the run waited here: the run's last checkpoint is this
    step's `approved` or `rejected` one (`CheckpointStore.decide`); None otherwise."""
    run = ctx.store.get_run(ctx.run_id)
    if run is None or run.seq == 0:
        return None
    last = ctx.store.checkpoints(ctx.run_id, after_seq=run.seq - 1)
    if not last or last[-1].step != ctx.step or last[-1].status not in ("approved", "rejected"):
        return None
    output = last[-1].output if isinstance(last[-1].output, dict) else {}
    return {"decision": last[-1].status, "actor": output.get("actor"), "comment": output.get("comment")}
