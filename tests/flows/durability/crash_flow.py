"""The flow the crash tests kill workers in: a branch, a parallel map with a checkpoint per item, a tool with a
side effect (a line in the ledger file `CRASH_LEDGER`, skipped for a key already paid) and plain steps after."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from pilothouse.flows import Flow, StepContext
from pilothouse.flows.tool_registry import flow_tool


class Order(BaseModel):
    items: list[int]
    express: bool = False
    scores: list[int] = []
    paid: float | None = None
    total: int = 0
    trail: list[str] = []


def ledger() -> Path:
    return Path(os.environ["CRASH_LEDGER"])


def executed(ctx: StepContext) -> None:
    """Log that this process executed the step (for the two-worker test: `CRASH_EXEC_LOG`)."""
    path = os.environ.get("CRASH_EXEC_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{ctx.run_id}\t{ctx.step}\t{ctx.item_index}\t{os.getpid()}\n")


@flow_tool(name="crash_charge", risk="low")
def crash_charge(amount: float, idempotency_key: str = "") -> float:
    """Charge once per key: a key already in the ledger is not charged again (the effect happened, its result
    was not yet recorded when the worker died). Returns a number only, so the output scan has no text to read."""
    path = ledger()
    seen = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if not any(line.split("\t")[0] == idempotency_key for line in seen):
        with path.open("a", encoding="utf-8") as out:
            out.write(f"{idempotency_key}\t{amount}\n")
            out.flush()
            os.fsync(out.fileno())
    return amount


flow = Flow("crash", state=Order)


@flow.step()
def prepare(state: Order, ctx: StepContext) -> dict[str, object]:
    executed(ctx)
    return {"trail": [*state.trail, "prepare"]}


@flow.step()
def score_one(state: Order, ctx: StepContext) -> int:
    executed(ctx)
    return int(ctx.item) * 3 + 1


flow.map("score", over=lambda s: s.items, step="score_one", into="scores", concurrency=2)
flow.tool("charge", tool="crash_charge", args=lambda s: {"amount": float(sum(s.scores))}, output="paid")


@flow.step()
def express(state: Order, ctx: StepContext) -> dict[str, object]:
    return {"trail": [*state.trail, "express"]}


@flow.step()
def finish(state: Order, ctx: StepContext) -> dict[str, object]:
    executed(ctx)
    return {"total": sum(state.scores) + len(state.items), "trail": [*state.trail, "finish"]}


flow.start("prepare")
flow.edge("prepare", "score")
flow.edge("score", "charge")
flow.branch("charge", lambda s: "express" if s.express else "plain", {"express": "express", "plain": "finish"})
flow.edge("express", "finish")
flow.edge("finish", Flow.END)
