"""A two-step flow for walks and face tests: a Python step (that fails when asked) and an approval."""

from __future__ import annotations

from pydantic import BaseModel

from pilothouse.flows import Flow, StepContext


class Walk(BaseModel):
    fail: bool = False
    note: str = ""


flow = Flow("walk", state=Walk)


@flow.step()
def first(state: Walk, ctx: StepContext) -> dict[str, object]:
    if state.fail:
        raise RuntimeError("asked to fail")
    return {"note": "first ran"}


flow.approval("approve", message="Go on?")
flow.start("first")
flow.edge("first", "approve")
flow.edge("approve", Flow.END)
