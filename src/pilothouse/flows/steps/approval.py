"""A human approval: the run pauses at this step (`waiting_for_approval`) until a person decides.

The first time the run reaches the step it returns `wait_for_approval`; the engine checkpoints it as `waiting`
and lets the run go. A decision (`CheckpointStore.decide`, from the API or `pilothouse flow approve RUN --step
S`) records an `approved` or `rejected` checkpoint (with any state edits) and queues the run; when a worker picks
it up, the step sees the decision in `ctx.approval`: approved goes on along the graph, rejected fails the run
(compensations run) with the person's comment as the cause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import ApprovalRejected
from pilothouse.flows.steps.base import StepResult


class ApprovalStep:
    kind: ClassVar[str] = "approval"

    def __init__(self, *, message: Callable[[Any], Any] | str | None = None) -> None:
        self.message = message

    def text(self, state: BaseModel) -> str | None:
        if self.message is None or isinstance(self.message, str):
            return self.message
        return str(self.message(state))

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        approval = ctx.approval
        if approval is None:
            return StepResult(output={"message": self.text(state)}, wait_for_approval=True)
        decision = {
            "approval": approval.get("decision"),
            "actor": approval.get("actor"),
            "comment": approval.get("comment"),
        }
        if approval.get("decision") != "approved":
            why = f": {approval['comment']}" if approval.get("comment") else ""
            raise ApprovalRejected(f"step {ctx.step!r} was rejected by {approval.get('actor')}{why}")
        return StepResult(output=decision, decision=decision)
