"""A step that is a plain Python function: `(state, ctx) -> dict of state updates` (sync or async).

Inside a map the function is called once per item (`ctx.item`) and its return value is the item's output.
A sync function runs in a worker thread so it never stalls the event loop (a timeout stops waiting for it,
it cannot stop the thread).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from pilothouse.flows.context import StepContext
from pilothouse.flows.steps.base import StepResult

StepFunction = Callable[[Any, StepContext], Any]


class PythonStep:
    kind: ClassVar[str] = "python"

    def __init__(self, fn: StepFunction) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        if self.is_async:
            result = await self.fn(state, ctx)
        else:
            result = await asyncio.to_thread(self.fn, state, ctx)
        if ctx.item_index is not None:
            return StepResult(output=result)
        if result is None:
            return StepResult()
        if isinstance(result, BaseModel):
            result = result.model_dump()
        if not isinstance(result, dict):
            raise TypeError(
                f"step {ctx.step!r} returned {type(result).__name__}: a step returns a dict of state updates (or None)"
            )
        return StepResult(updates=result, output=result)
