"""The issue's first proof: a workflow with a condition, a parallel map, a tool call and an approval runs end to
end with the local model (through the gateway in process) on the SQL store, and its trace shows the path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.config import LOCAL_CHAT_MODEL, LocalModelSettings, Settings
from pilothouse.flows import Approval, Engine, Flow, StepContext
from pilothouse.flows.calls import GatewayModelCalls
from pilothouse.flows.decision_path import render
from pilothouse.flows.tool_registry import ToolRegistry, flow_tool
from pilothouse.flows.tools_runtime import ToolRuntime
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.store.engine import Store, open_store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project
from pilothouse.store.traces import get_trace
from pilothouse.tracing.sink import StoreSink

pytestmark = pytest.mark.model


class Refund(BaseModel):
    amount: float
    lines: list[float] = []
    checked: list[bool] = []
    summary: str = ""
    receipt: str | None = None


@dataclass
class World:
    store: Store
    checkpoints: SqlCheckpointStore
    project: str
    models: GatewayModelCalls
    tools: ToolRuntime
    sink: StoreSink
    payments: list[dict[str, Any]]

    def engine(self, worker: str) -> Engine:
        return Engine(self.checkpoints, worker=worker, models=self.models, tools=self.tools, tracer=self.sink)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(data_dir=tmp_path / "data", local=LocalModelSettings(n_ctx=1024))
    store = open_store(f"sqlite:///{tmp_path / 'flows.db'}")
    resolver = PromptResolver(store)
    pool = ProviderPool(settings)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    with store.begin() as conn:
        project = create_project(conn, "e2e").id
    registry = ToolRegistry()
    payments: list[dict[str, Any]] = []

    @flow_tool(registry=registry, risk="low")
    def refund_payment(amount: float, idempotency_key: str = "") -> str:
        """Pay a refund (a side effect: recorded in `payments`)."""
        payments.append({"amount": amount, "key": idempotency_key})
        return f"receipt-{len(payments)}"

    models = GatewayModelCalls(Pipeline(Gateway(settings, pool, default_price_book(), resolver), sink))
    tools = ToolRuntime(registry=registry, tracer=sink)
    yield World(store, SqlCheckpointStore(store), project, models, tools, sink, payments)
    await pool.aclose()
    sink.close()
    resolver.close()
    store.dispose()


def refund_flow() -> Flow:
    flow = Flow("refund", state=Refund, budget={"model_calls": 3, "steps": 30})

    @flow.step()
    def split(state: Refund, ctx: StepContext) -> dict[str, Any]:
        return {"lines": [state.amount / 3] * 3}

    @flow.step()
    async def check_line(state: Refund, ctx: StepContext) -> bool:
        return bool(ctx.item > 0)

    def size(state: Refund) -> str:
        return "big" if state.amount > 100 else "small"

    flow.map("check_lines", over=lambda s: s.lines, step="check_line", into="checked", concurrency=3)
    flow.llm(
        "summarise",
        model=LOCAL_CHAT_MODEL,
        messages=lambda s: [{"role": "user", "content": f"In five words: a customer wants {s.amount:g} back."}],
        output="summary",
        params={"max_tokens": 12, "temperature": 0},
    )
    flow.approval("approve", message=lambda s: f"Refund {s.amount:g}? {s.summary}")
    flow.tool("pay", tool="refund_payment", args=lambda s: {"amount": s.amount}, output="receipt")
    flow.start("split")
    flow.edge("split", "check_lines")
    flow.edge("check_lines", "summarise")
    flow.branch("summarise", size, {"big": "approve", "small": "pay"})
    flow.edge("approve", "pay")
    flow.edge("pay", Flow.END)
    return flow


async def test_condition_map_model_tool_and_approval_end_to_end(world: World) -> None:
    flow = refund_flow()
    run = world.engine("w1").start(flow, {"amount": 120}, project_id=world.project)
    waiting = await world.engine("w1").run(flow, run.id)
    assert waiting.status == "waiting_for_approval", waiting.error
    assert waiting.state["summary"].strip() and waiting.state["checked"] == [True, True, True]
    assert world.payments == []  # nothing paid before a person approved
    world.checkpoints.decide(Approval(run.id, "approve", "approved", "alice", comment="ok"))
    done = await world.engine("w2").run(flow, run.id)  # another worker finishes it
    assert done.status == "succeeded", done.error
    assert done.state["receipt"] == "receipt-1" and len(world.payments) == 1
    assert world.payments[0]["amount"] == 120 and world.payments[0]["key"].startswith(f"{run.id}/pay#0/")
    assert done.spent["model_calls"] == 1 and int(done.spent["tokens"]) > 0

    path = render(done, world.checkpoints.checkpoints(run.id))
    assert "-> approve (size = 'big')" in path and "approved by alice: ok" in path and "3 items" in path

    with world.store.connect() as conn:
        trace = get_trace(conn, world.project, run.trace_id or "")
    assert trace is not None and trace["source"] == "flow"
    spans = trace["spans"]
    top = [s["name"] for s in spans if s["parent_id"] is None and s["kind"] == "step"]
    assert top == ["split", "check_lines", "summarise", "approve", "approve", "pay"]
    by_id = {s["id"]: s for s in spans}
    llm = next(s for s in spans if s["kind"] == "llm")
    assert by_id[llm["parent_id"]]["name"] == "summarise" and llm["model"] == LOCAL_CHAT_MODEL
    tool = next(s for s in spans if s["kind"] == "tool")
    assert by_id[tool["parent_id"]]["name"] == "pay"
    summarise = next(s for s in spans if s["name"] == "summarise")
    assert summarise["attributes"]["pilothouse.step.decision"]["value"] == "big"
