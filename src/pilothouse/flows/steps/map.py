"""Fan-out and fan-in: one step run once per item of a list in the state, items in parallel.

The engine runs a map (flows/fanout.py): each item is its own attempt of the body step with `ctx.item` set and
its own checkpoint, so a run that crashes mid-map resumes with only the unfinished items; when every item is
done the outputs, in item order, go to the state field `into`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowError
from pilothouse.flows.steps.base import StepResult


class MapStep:
    kind: ClassVar[str] = "map"

    def __init__(self, *, over: Callable[[Any], Any], step: str, into: str, concurrency: int = 4) -> None:
        self.over = over
        self.body = step
        self.into = into
        self.concurrency = concurrency

    def items(self, state: BaseModel) -> list[Any]:
        items = self.over(state)
        if isinstance(items, str | bytes) or not hasattr(items, "__iter__"):
            raise TypeError(f"map over: expected a list of items, got {type(items).__name__}")
        return list(items)

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        raise FlowError(f"map step {ctx.step!r} is run by the engine, item by item; it cannot run on its own")
