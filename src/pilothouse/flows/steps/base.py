"""The one seam every step kind implements: `Step.run(state, ctx) -> StepResult`.

A step reads the typed state, does its work (through `ctx` for model calls, tools and budgets) and returns the
state updates it wants applied. The engine applies them, validates the new state against the flow's model,
records the checkpoint and picks the next steps; a step never writes the store itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from pilothouse.flows.context import StepContext


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did.

    updates: state fields to set (validated against the flow's state model by the engine).
    output: the step's result as recorded in its checkpoint and span (a map collects its items' outputs).
    input: what the step consumed besides the state (messages sent, tool arguments), for the checkpoint.
    decision: why the run goes where it goes, for the decision path (a branch adds its own).
    wait_for_approval: pause the run at this step until a person approves or rejects it.
    """

    updates: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    input: Any = None
    decision: dict[str, Any] | None = None
    wait_for_approval: bool = False


@runtime_checkable
class Step(Protocol):
    """One kind of work. `kind` names it in spans, checkpoints and the Mermaid graph."""

    kind: ClassVar[str]

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult: ...
