"""A workflow the browser tests start: a check, then a person's approval, then a final step. No model calls,
so the run reaches its approval step in moments on the test server."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pilothouse.flows import Flow, StepContext


class Refund(BaseModel):
    amount: float = Field(gt=0)
    customer: str = "browser test customer"
    checked: bool = False
    paid: bool = False


flow = Flow("browser-refund", state=Refund, budget={"steps": 10})


@flow.step()
def check(state: Refund, ctx: StepContext) -> dict[str, object]:
    return {"checked": True}


flow.approval("approve", message=lambda s: f"Refund {s.amount} EUR to {s.customer}?")


@flow.step()
def pay(state: Refund, ctx: StepContext) -> dict[str, object]:
    return {"paid": True}


flow.start("check")
flow.edge("check", "approve")
flow.edge("approve", "pay")
flow.edge("pay", Flow.END)
