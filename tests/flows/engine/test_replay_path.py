"""The decision path (`flow show`), replays from a checkpoint with a changed step, and sub-flows."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.flows import Approval, Engine, Flow, MemoryCheckpointStore, StepContext
from pilothouse.flows.decision_path import as_json, render
from pilothouse.flows.replay import ReplayError, replay
from tests.flows.engine.test_engine import refund_flow


async def approved_run(engine: Engine, mem: MemoryCheckpointStore) -> tuple[Flow, str]:
    flow = refund_flow([])
    run = engine.start(flow, {"amount": 120}, project_id="p")
    await engine.run(flow, run.id)
    mem.decide(Approval(run.id, "approve", "approved", "alice", comment="looks right"))
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded"
    return flow, run.id


async def test_the_path_reads_as_what_happened(engine: Engine, mem: MemoryCheckpointStore) -> None:
    _, run_id = await approved_run(engine, mem)
    run = mem.get_run(run_id)
    assert run is not None
    text = render(run, mem.checkpoints(run_id)).splitlines()
    assert text[0].startswith(f"run {run_id}  flow refund  succeeded  (steps 8,")
    body = [" ".join(line.split()) for line in text[1:]]
    assert body == [
        "1 check succeeded",
        "2 each succeeded 3 items",
        "5 each succeeded -> approve (size = 'big')",
        "6 approve waiting waiting for approval: Refund 120.0?",
        "7 approve approved approved by alice: looks right",
        "8 approve succeeded",
        "9 pay succeeded",
    ]
    entries = as_json(run, mem.checkpoints(run_id))
    assert entries[2]["decision"] == {"condition": "size", "value": "big", "to": "approve"}
    assert entries[1]["items"] == 3


async def test_a_failed_run_shows_its_error(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = refund_flow([])
    run = engine.start(flow, {"amount": 120}, project_id="p")
    await engine.run(flow, run.id)
    mem.decide(Approval(run.id, "approve", "rejected", "bob"))
    done = await engine.run(flow, run.id)
    text = render(done, mem.checkpoints(run.id))
    assert "rejected by bob" in text
    assert text.endswith("error at step approve: ApprovalRejected: step 'approve' was rejected by bob")


async def test_replay_from_a_checkpoint_with_a_changed_step_leaves_the_original(
    engine: Engine, mem: MemoryCheckpointStore
) -> None:
    flow, run_id = await approved_run(engine, mem)
    before = mem.checkpoints(run_id)

    def pay_less(state: Any, ctx: StepContext) -> dict[str, Any]:
        return {"note": f"paid half: {state.amount / 2}"}

    new = await replay(engine, flow, run_id, from_seq=8, changes={"pay": pay_less})
    assert new.id != run_id and new.replay_of == run_id and new.status == "succeeded"
    assert new.state["note"] == "paid half: 60.0" and new.state["scores"] == [10, 20, 30]
    assert [c.step for c in mem.checkpoints(new.id)] == ["pay"]
    original = mem.get_run(run_id)
    assert original is not None and original.state["note"] == "paid 120.0"
    assert mem.checkpoints(run_id) == before
    again = await replay(engine, flow, run_id, from_seq=6, execute=False)  # a waiting checkpoint: wait again
    assert again.next_steps == ("approve",) and again.status == "queued"
    small = await replay(engine, flow, run_id, from_seq=0, changes={"pay": pay_less})
    assert small.status == "waiting_for_approval"  # from the start, with the original input
    with pytest.raises(ReplayError, match="item"):
        await replay(engine, flow, run_id, from_seq=2)
    with pytest.raises(ReplayError, match="no checkpoint 99"):
        await replay(engine, flow, run_id, from_seq=99)
    with pytest.raises(ReplayError, match="only a finished run"):
        await replay(engine, flow, small.id, from_seq=1)


class Parent(BaseModel):
    x: int
    child: dict[str, Any] | None = None


class Child(BaseModel):
    y: int
    doubled: int = 0


def child_flow() -> Flow:
    child = Flow("double", state=Child)

    @child.step()
    def double(state: Child, ctx: StepContext) -> dict[str, Any]:
        ctx.charge(tokens=5, model_calls=1)
        return {"doubled": state.y * 2}

    child.start("double")
    child.edge("double", Flow.END)
    return child


async def test_a_subflow_runs_as_a_child_run(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = Flow("parent", state=Parent)
    flow.subflow("sub", child_flow(), input=lambda s: {"y": s.x + 1}, output="child")
    flow.start("sub")
    flow.edge("sub", Flow.END)
    run = engine.start(flow, {"x": 4}, project_id="p", ref="pkg.mod:flow")
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded" and done.state["child"] == {"y": 5, "doubled": 10}
    assert done.spent["tokens"] == 5 and done.spent["model_calls"] == 1  # the child's spend is the parent's
    [child] = [r for r in mem.list_runs("p") if r.parent_run_id == run.id]
    assert child.flow == "pkg.mod:flow#sub" and child.trace_id == run.trace_id and child.status == "succeeded"
    from pilothouse.flows.subflows import resolve_child

    assert resolve_child(flow, child.flow).name == "double"
    assert "sub" in flow.mermaid()


async def test_a_resumed_parent_continues_its_child(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = Flow("parent", state=Parent)
    flow.subflow("sub", child_flow(), input=lambda s: {"y": s.x}, output="child")
    flow.start("sub")
    flow.edge("sub", Flow.END)
    run = engine.start(flow, {"x": 2}, project_id="p")
    # the parent's worker died after creating the child, which another worker had already finished
    child = engine.start(child_flow(), {"y": 2}, project_id="p", parent_run_id=run.id)
    await engine.run(child_flow(), child.id)
    mem.record_effect(run.id, f"{run.id}/sub#0/subflow", child.id)
    done = await engine.run(flow, run.id)
    assert done.state["child"] == {"y": 2, "doubled": 4}
    assert len([r for r in mem.list_runs("p") if r.parent_run_id == run.id]) == 1  # no second child


async def test_any_worker_runs_a_child_given_the_root_flow(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = Flow("parent", state=Parent)
    flow.subflow("sub", child_flow(), input=lambda s: {"y": s.x}, output="child")
    flow.start("sub")
    flow.edge("sub", Flow.END)
    child = engine.start(child_flow(), {"y": 7}, project_id="p", ref="pkg.mod:flow#sub")
    other = Engine(mem, worker="w2")
    done = await other.run(flow, child.id)  # a worker loads `pkg.mod:flow` (the root) for `pkg.mod:flow#sub`
    assert done.status == "succeeded" and done.state == {"y": 7, "doubled": 14}
