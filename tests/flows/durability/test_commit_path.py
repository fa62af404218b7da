"""The per-step commit path (store/flow_commit.py) and the engine's store calls off the event loop: several
checkpoints in one fenced write, nothing written by a refused commit, racing commits of one step recorded once,
values read back as written; and an engine executing several runs overlaps their store calls."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from pilothouse.flows.context import StepContext
from pilothouse.flows.engine import Engine
from pilothouse.flows.graph import Flow
from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.flows.protocol import Checkpoint, LeaseLost, NewRun, SeqConflict
from pilothouse.store.engine import Store
from pilothouse.store.flow_tables import flow_checkpoints
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project


def _running(store: Store) -> tuple[SqlCheckpointStore, str]:
    flows = SqlCheckpointStore(store)
    with store.begin() as conn:
        project = create_project(conn, "commits").id
    run = flows.create_run(
        NewRun(
            project_id=project,
            flow="pkg.mod:flow",
            flow_name="f",
            flow_hash="h" * 16,
            input={"a": [1, "x"]},
            state={"a": 0},
            next_steps=("s",),
            budget={"steps": 9},
        )
    )
    assert flows.claim("w1", lease_s=30, run_id=run.id) is not None
    return flows, run.id


def _cp(run_id: str, seq: int, **extra: Any) -> Checkpoint:
    return Checkpoint(
        run_id=run_id,
        seq=seq,
        step=f"s{seq}",
        attempt=1,
        status="succeeded",
        input={"i": seq},
        output=None,
        state_after={"a": seq},
        cost_usd=0.000125,
        tokens=3,
        **extra,
    )


def _commit(flows: SqlCheckpointStore, run_id: str, cps: list[Checkpoint], worker: str = "w1", **kw: Any) -> Any:
    options: dict[str, Any] = {"state": {"a": len(cps)}, "next_steps": ("next",), "status": "running", "spent": {}}
    return flows.commit_step(run_id, worker, cps, **{**options, **kw})


def test_several_checkpoints_commit_together_and_read_back_as_written(store: Store) -> None:
    flows, run_id = _running(store)
    record = _commit(flows, run_id, [_cp(run_id, 1), _cp(run_id, 2, item=4, decision={"to": "b"}, span_id="ab")])
    assert record.seq == 2 and record.status == "running" and record.lease_owner == "w1"
    assert record.input == {"a": [1, "x"]} and record.budget == {"steps": 9} and record.cancel_requested is False
    assert record == flows.get_run(run_id)
    first, second = flows.checkpoints(run_id)
    assert (first.seq, first.step, first.input, first.output, first.decision, first.error) == (
        1,
        "s1",
        {"i": 1},
        None,
        None,
        None,
    )
    assert (second.item, second.decision, second.span_id, second.cost_usd, second.tokens) == (
        4,
        {"to": "b"},
        "ab",
        0.000125,
        3,
    )
    with store.connect() as conn:  # cost in exact pico-dollars, like every Money column
        assert conn.execute(select(flow_checkpoints.c.cost_usd)).scalars().all() == [Decimal("0.000125")] * 2
    done = _commit(flows, run_id, [_cp(run_id, 3)], status="succeeded", error={"why": None})
    assert (done.seq, done.status, done.lease_owner, done.lease_expires_at, done.error) == (
        3,
        "succeeded",
        None,
        None,
        {"why": None},
    )
    assert done == flows.get_run(run_id)


def test_a_refused_commit_writes_nothing(store: Store) -> None:
    flows, run_id = _running(store)
    _commit(flows, run_id, [_cp(run_id, 1)])
    with pytest.raises(SeqConflict, match="already recorded"):
        _commit(flows, run_id, [_cp(run_id, 1), _cp(run_id, 2)])
    with pytest.raises(SeqConflict):  # not consecutive
        _commit(flows, run_id, [_cp(run_id, 2), _cp(run_id, 4)])
    with pytest.raises(LeaseLost):
        _commit(flows, run_id, [_cp(run_id, 2)], worker="w2")
    with pytest.raises(LeaseLost, match="does not exist"):
        _commit(flows, "run_missing", [])
    run = flows.get_run(run_id)
    assert run is not None and run.seq == 1 and run.state == {"a": 1}
    assert [c.seq for c in flows.checkpoints(run_id)] == [1]


def test_racing_commits_of_one_step_record_it_once(store: Store) -> None:
    flows, run_id = _running(store)
    outcomes: list[str] = []
    gate = threading.Barrier(6)

    def commit() -> None:
        gate.wait()
        try:
            _commit(flows, run_id, [_cp(run_id, 1)])
            outcomes.append("ok")
        except SeqConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=commit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert [c.seq for c in flows.checkpoints(run_id)] == [1]


class _S(BaseModel):
    n: int = 0


class _SlowStore(MemoryCheckpointStore):
    """A store whose commits block (like a database round trip) and count how many are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most = 0
        self.count_lock = threading.Lock()

    def commit_step(self, *args: Any, **kwargs: Any) -> Any:
        with self.count_lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.02)
            return super().commit_step(*args, **kwargs)
        finally:
            with self.count_lock:
                self.in_flight -= 1


def test_an_engine_running_several_runs_overlaps_their_store_calls() -> None:
    flow = Flow("overlap", state=_S)
    for i in range(3):

        async def step(state: _S, ctx: StepContext) -> dict[str, Any]:
            await asyncio.sleep(0)  # a step that waits on something (a model, a tool) lets the other runs go
            return {"n": state.n + 1}

        flow.step(f"s{i}")(step)
    flow.start("s0")
    flow.edge("s0", "s1")
    flow.edge("s1", "s2")
    flow.edge("s2", Flow.END)
    store = _SlowStore()
    engine = Engine(store, worker="w")
    alone = engine.start(flow, {}, project_id="p")
    assert asyncio.run(engine.run(flow, alone.id)).state == {"n": 3}
    assert store.most == 1  # one run: its commits stay in the loop's thread, one at a time
    ids = [engine.start(flow, {}, project_id="p").id for _ in range(4)]

    async def together() -> list[Any]:
        return await asyncio.gather(*(engine.run(flow, run_id) for run_id in ids))

    done = asyncio.run(together())
    assert [r.status for r in done] == ["succeeded"] * 4 and all(r.state == {"n": 3} for r in done)
    assert store.most >= 2  # the runs' commits overlapped instead of queueing behind one another
    assert engine.executing == 0


def test_a_runs_commits_reuse_one_connection_and_give_it_back_when_the_run_ends(store: Store) -> None:
    flows, run_id = _running(store)
    pool: Any = store.engine.pool
    for seq in (1, 2, 3):
        _commit(flows, run_id, [_cp(run_id, seq)])
        assert pool.checkedout() <= 1  # kept warm between back-to-back commits (PostgreSQL), never more
    _commit(flows, run_id, [_cp(run_id, 4)], status="succeeded")
    assert pool.checkedout() == 0  # the finished run's connection is back in the pool
