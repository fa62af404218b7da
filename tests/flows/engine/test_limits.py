"""Controlled autonomy: run budgets (steps, cost, tokens, model calls, wall time), loop bounds, the kill switch,
a lost lease and a changed graph."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.flows import Engine, Flow, FlowChanged, LeaseLost, MemoryCheckpointStore, StepContext


class Loop(BaseModel):
    n: int = 0


def looping(budget: dict[str, Any] | None = None, *, bound: int = 100, charge: dict[str, Any] | None = None) -> Flow:
    flow = Flow("loop", state=Loop, budget=budget)

    @flow.step()
    def work(state: Loop, ctx: StepContext) -> dict[str, Any]:
        if charge:
            ctx.check_budget()
            ctx.charge(**charge)
        return {"n": state.n + 1}

    flow.start("work")
    flow.branch("work", lambda s: s.n < 1000, {True: "work", False: Flow.END})
    flow.loop_bound("work", max_visits=bound)
    return flow


@pytest.mark.parametrize(
    ("budget", "charge", "limit", "n"),
    [
        ({"steps": 4}, None, "steps", 4),
        ({"cost_usd": 0.05}, {"cost_usd": "0.02", "model_calls": 1}, "cost_usd", 2),
        ({"tokens": 250}, {"tokens": 100, "model_calls": 1}, "tokens", 2),
        ({"model_calls": 3}, {"model_calls": 1}, "model_calls", 3),
    ],
)
async def test_a_budget_stops_the_run_with_a_clear_error(
    engine: Engine, budget: dict[str, Any], charge: dict[str, Any] | None, limit: str, n: int
) -> None:
    flow = looping(budget, charge=charge)
    done = await engine.run(flow, engine.start(flow, {}, project_id="p").id)
    assert done.status == "failed" and done.error is not None
    assert done.error["cause"] == "BudgetExceeded" and done.error["step"] == "work"
    assert f"run budget {limit}" in done.error["message"]
    assert done.state["n"] == n


async def test_a_per_run_budget_overrides_the_flows(engine: Engine) -> None:
    flow = looping({"steps": 100})
    run = engine.start(flow, {}, project_id="p", budget={"steps": 2})
    assert run.budget == {"steps": 2}
    done = await engine.run(flow, run.id)
    assert done.error is not None and done.error["cause"] == "BudgetExceeded" and done.state["n"] == 2


async def test_spend_is_recorded_with_every_step(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = looping({"cost_usd": 1}, bound=3, charge={"cost_usd": "0.001", "tokens": 7, "model_calls": 1})
    done = await engine.run(flow, engine.start(flow, {}, project_id="p").id)
    assert done.error is not None and done.error["cause"] == "LoopBoundExceeded"
    assert "reached its loop bound (3 visits)" in done.error["message"]
    assert done.spent["cost_usd"] == "0.003" and done.spent["tokens"] == 21 and done.spent["model_calls"] == 3
    assert done.spent["steps"] == 3 and done.spent["visits"] == {"work": 3}  # the 4th visit never started


async def test_wall_time_budget_cuts_a_slow_step(engine: Engine) -> None:
    flow = Flow("slow", state=Loop, budget={"wall_s": 0.1})

    @flow.step()
    async def wait(state: Loop, ctx: StepContext) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {}

    flow.start("wait")
    flow.edge("wait", Flow.END)
    done = await asyncio.wait_for(engine.run(flow, engine.start(flow, {}, project_id="p").id), 3)
    assert done.error is not None and done.error["cause"] == "BudgetExceeded"
    assert "wall_s" in done.error["message"]


async def test_the_kill_switch_stops_a_running_run_before_its_next_step(
    engine: Engine, mem: MemoryCheckpointStore
) -> None:
    flow = Flow("kill", state=Loop)

    @flow.step()
    def first(state: Loop, ctx: StepContext) -> dict[str, Any]:
        mem.request_cancel(ctx.run_id)  # someone pulls the switch while this step runs
        return {"n": 1}

    @flow.step()
    def second(state: Loop, ctx: StepContext) -> dict[str, Any]:
        raise AssertionError("must not run")

    flow.start("first")
    flow.edge("first", "second")
    flow.edge("second", Flow.END)
    done = await engine.run(flow, engine.start(flow, {}, project_id="p").id)
    assert done.status == "cancelled" and done.state["n"] == 1 and done.next_steps == ()
    queued = engine.start(flow, {}, project_id="p")
    mem.request_cancel(queued.id)
    assert (await engine.run(flow, queued.id)).status == "cancelled"


async def test_a_lost_lease_stops_the_worker(mem: MemoryCheckpointStore) -> None:
    engine = Engine(mem, worker="w1", lease_s=0.15)
    flow = Flow("lease", state=Loop)

    @flow.step()
    async def slow(state: Loop, ctx: StepContext) -> dict[str, Any]:
        mem.release(ctx.run_id, "w1")  # as if the lease had expired...
        assert mem.claim("w2", lease_s=30, run_id=ctx.run_id) is not None  # ...and another worker took over
        await asyncio.sleep(2)
        return {"n": 1}

    flow.start("slow")
    flow.edge("slow", Flow.END)
    run = engine.start(flow, {}, project_id="p")
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(engine.run(flow, run.id), 3)
    after = mem.get_run(run.id)
    assert after is not None and after.seq == 0 and after.lease_owner == "w2"  # w1 recorded nothing


async def test_a_changed_graph_is_refused_on_resume(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = looping()
    run = engine.start(flow, {}, project_id="p")
    changed = looping(bound=5)
    with pytest.raises(FlowChanged, match="changed since run"):
        await engine.run(changed, run.id)
    after = mem.get_run(run.id)
    assert after is not None and after.lease_owner is None and after.seq == 0  # released, untouched
