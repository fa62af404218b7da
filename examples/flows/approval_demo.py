"""A refund workflow: a model summarises the request, refunds above 100 wait for a person, then a payment tool
with a side effect runs exactly once (docs/flows.md).

    pilothouse flow run examples/flows/approval_demo.py:flow --input '{"amount": 120}' --json
    pilothouse flow approve RUN --step approve
    pilothouse flow show RUN

The payment is a line appended to a ledger file (`APPROVAL_DEMO_LEDGER`, default `refunds.jsonl` in the
worker's working directory). The tool receives its call's idempotency key and skips a key it already paid, so
even a worker killed between the payment and its checkpoint never pays twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from pilothouse.flows import Flow, StepContext, flow_tool

APPROVAL_LIMIT = 100.0


class Refund(BaseModel):
    amount: float = Field(gt=0, description="The refund in EUR.")
    customer: str = "demo customer"
    reason: str = "the parcel arrived damaged"
    summary: str = ""
    receipt: dict[str, object] | None = None


def ledger() -> Path:
    return Path(os.environ.get("APPROVAL_DEMO_LEDGER", "refunds.jsonl"))


@flow_tool(risk="medium", timeout_s=10)
def refund_payment(amount: float, customer: str, idempotency_key: str = "") -> dict[str, object]:
    """Pay a refund to a customer (appends it to the ledger file)."""
    path = ledger()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            paid = json.loads(line)
            if paid["key"] == idempotency_key:
                return {"receipt": paid["receipt"], "amount": paid["amount"], "repeated": True}
    receipt = f"rf-{abs(hash(idempotency_key)) % 10**8:08d}"
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"key": idempotency_key, "receipt": receipt, "amount": amount, "customer": customer}))
        out.write("\n")
    return {"receipt": receipt, "amount": amount, "repeated": False}


flow = Flow("refund", state=Refund, budget={"cost_usd": 0.05, "model_calls": 5, "steps": 20})


@flow.step()
def check(state: Refund, ctx: StepContext) -> dict[str, object]:
    """Refuse what no one should approve."""
    if state.amount > 10_000:
        raise ValueError(f"a refund of {state.amount} EUR is above the 10000 EUR ceiling")
    return {"customer": state.customer.strip() or "demo customer"}


flow.llm(
    "summarise",
    model="smollm2-135m",
    messages=lambda s: [
        {"role": "user", "content": f"In one sentence, summarise: refund {s.amount} EUR to {s.customer}, {s.reason}."}
    ],
    params={"max_tokens": 40, "temperature": 0},
    output="summary",
)
flow.approval("approve", message=lambda s: f"Refund {s.amount} EUR to {s.customer}? Summary: {s.summary}")
flow.tool("pay", tool="refund_payment", args=lambda s: {"amount": s.amount, "customer": s.customer}, output="receipt")

flow.start("check")
flow.edge("check", "summarise")
flow.branch(
    "summarise",
    lambda s: "needs_approval" if s.amount > APPROVAL_LIMIT else "small",
    {"needs_approval": "approve", "small": "pay"},
)
flow.edge("approve", "pay")
flow.edge("pay", Flow.END)
