"""Another flow run as one step: a child run (`parent_run_id` set) with its own checkpoints.

The engine creates the child run once (its id is recorded as the step's effect, so a resumed parent continues
the same child instead of starting another), runs it to its end in the same worker, and puts the child's final
state in the parent's state field `output`. A child that waits for approval makes the parent wait too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowError
from pilothouse.flows.steps.base import StepResult

if TYPE_CHECKING:
    from pilothouse.flows.graph import Flow


class SubflowStep:
    kind: ClassVar[str] = "subflow"

    def __init__(self, *, flow: Flow, input: Callable[[Any], Any], output: str | None = None) -> None:
        self.flow = flow
        self.input = input
        self.output = output

    def child_input(self, state: BaseModel) -> dict[str, Any]:
        value = self.input(state)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if not isinstance(value, dict):
            raise TypeError(f"subflow input must be a dict for flow {self.flow.name!r}, got {type(value).__name__}")
        return value

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        raise FlowError(f"subflow step {ctx.step!r} is run by the engine; it cannot run on its own")
