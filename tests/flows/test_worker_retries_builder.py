"""Integration seams of the flows package: a sub-flow's child run executed by a Worker on the SQL store (its
reference is `<root ref>#step`), errors a retry cannot fix failing at once whatever the retry policy, and the
builder's agent helpers (`flow.supervisor`, `flow.handoff`, extra options passed through to the step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.errors import ApiError
from pilothouse.flows import (
    Engine,
    Flow,
    FlowDefinitionError,
    MapItemFailed,
    MemoryCheckpointStore,
    Retry,
    StepContext,
)
from pilothouse.flows.agents import Agent, AgentLimitExceeded, HandoffStep, SupervisorStep
from pilothouse.flows.calls import ModelCallFailed
from pilothouse.flows.steps.guard import GuardBlocked
from pilothouse.flows.steps.tool import ToolStep
from pilothouse.flows.tool_calls import ToolFailed, ToolOutputBlocked
from pilothouse.flows.worker import Worker
from pilothouse.store.engine import Store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project

REF = f"{Path(__file__).resolve()}:PARENT"


class Child(BaseModel):
    y: int
    doubled: int = 0


class Parent(BaseModel):
    x: int
    child: dict[str, Any] | None = None


def _child() -> Flow:
    child = Flow("double", state=Child)

    @child.step()
    def double(state: Child, ctx: StepContext) -> dict[str, Any]:
        return {"doubled": state.y * 2}

    child.start("double")
    child.edge("double", Flow.END)
    return child


def _parent() -> Flow:
    parent = Flow("parent", state=Parent)
    parent.subflow("sub", _child(), input=lambda s: {"y": s.x + 1}, output="child")
    parent.start("sub")
    parent.edge("sub", Flow.END)
    return parent


PARENT = _parent()
"""Loaded by the workers from REF (this file), as a server's worker loads a user's flow file."""


async def test_a_worker_runs_a_subflow_and_a_child_run_left_queued(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "flows").id
    flows = SqlCheckpointStore(store)
    engine = Engine(flows, worker="w1", lease_s=5)
    worker = Worker(flows, engine, concurrency=2, poll_s=0.05)

    run = engine.start(PARENT, {"x": 4}, project_id=project, ref=REF)
    assert await worker.drain() >= 1
    done = flows.get_run(run.id)
    assert done is not None and done.status == "succeeded", done
    assert done.state["child"] == {"y": 5, "doubled": 10}

    # A child whose parent's worker died after creating it: queued, with a `ref#step` reference. A worker
    # claims it on its own and must load the root flow from before the '#' and find the child in it.
    orphan = engine.start(_child(), {"y": 7}, project_id=project, ref=f"{REF}#sub", parent_run_id=run.id)
    ran = await worker.run_once(run_id=orphan.id)
    assert ran is not None and ran.status == "succeeded", ran.error
    assert ran.state == {"y": 7, "doubled": 14}


class Count(BaseModel):
    n: int = 0


def _api_error(status: int) -> ModelCallFailed:
    return ModelCallFailed(ApiError("nope", code="x", status=status), step="s", trace_id=None)


UNFIXABLE: list[BaseException] = [
    AgentLimitExceeded("too many steps", limit="max_steps", usage={}),
    GuardBlocked("flagged", result={}),
    ToolOutputBlocked("withheld", tool="t"),
    _api_error(400),
    MapItemFailed("item 0 failed", item=0, cause=GuardBlocked("flagged", result={})),
]
FIXABLE: list[BaseException] = [
    ToolFailed("boom", tool="t"),
    _api_error(503),
    RuntimeError("flaky"),
    MapItemFailed("item 0 failed", item=0, cause=RuntimeError("flaky")),
]


async def _attempts(error: BaseException) -> int:
    calls = 0
    flow = Flow("retrying", state=Count)

    @flow.step(retry=Retry(attempts=3, backoff_s=0.0))
    def once(state: Count, ctx: StepContext) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise error

    flow.start("once")
    flow.edge("once", Flow.END)
    engine = Engine(MemoryCheckpointStore(), worker="w1")
    run = engine.start(flow, {}, project_id="p", ref="pkg.mod:flow")
    done = await engine.run(flow, run.id)
    assert done.status == "failed" and done.error is not None and done.error["cause"] == type(error).__name__
    return calls


@pytest.mark.parametrize("error", UNFIXABLE, ids=lambda e: type(e).__name__ + str(getattr(e, "status", "")))
async def test_a_default_retry_stops_at_once_on_errors_no_retry_can_fix(error: BaseException) -> None:
    assert getattr(error, "retryable", None) is False
    assert await _attempts(error) == 1


@pytest.mark.parametrize("error", FIXABLE, ids=lambda e: type(e).__name__ + str(getattr(e, "status", "")))
async def test_a_default_retry_retries_what_may_pass(error: BaseException) -> None:
    assert await _attempts(error) == 3


def test_the_builder_adds_supervisor_and_handoff_steps_and_passes_options_through() -> None:
    flow = Flow("team", state=Count)
    flow.supervisor(
        "route",
        model="local",
        workers=[Agent("billing", "local", tools=("refund_payment",)), Agent("support", "local")],
        max_rounds=2,
        output="answer",
    )
    flow.handoff(
        "talk",
        agents=[Agent("triage", "local"), Agent("refunds", "local", tools=("refund_payment",))],
        start="triage",
        handoffs={"triage": ["refunds"]},
        max_handoffs=1,
    )
    flow.tool("pay", tool="refund_payment", args=lambda s: {}, on_injection="flag")
    flow.start("route")
    flow.edge("route", "talk")
    flow.edge("talk", "pay")
    flow.edge("pay", Flow.END)
    flow.build()
    route, talk, pay = (flow.nodes[n].step for n in ("route", "talk", "pay"))
    assert isinstance(route, SupervisorStep) and list(route.workers) == ["billing", "support"]
    assert isinstance(talk, HandoffStep) and talk.start == "triage" and talk.routes == {"triage": ["refunds"]}
    assert isinstance(pay, ToolStep) and pay.on_injection == "flag"
    with pytest.raises(FlowDefinitionError, match=r"step 'bad'.*unknown agent"):
        flow.handoff("bad", agents=[Agent("a", "m")], start="a", handoffs={"a": ["b"]})
    with pytest.raises(FlowDefinitionError, match="step 'odd'"):
        flow.guard("odd", text=lambda s: "", on_fail="shrug")
