"""A worker that dies at any point of a run: another worker resumes it from the last checkpoint, the final state
equals an uninterrupted run's, no step is recorded twice and each side effect happened once per logical call.

The crash is simulated in process, exhaustively: at every store write (checkpoint commits and effect records),
just before it reaches the store and just after. The SIGKILL tests on the SQL stores are in
tests/flows/durability/."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.flows import Engine, Flow, MemoryCheckpointStore, StepContext
from pilothouse.flows.protocol import Checkpoint, RunRecord


class Crash(BaseException):
    """The worker process dies here (a BaseException: nothing in the engine may swallow it)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class CrashingStore(MemoryCheckpointStore):
    """Dies at write number `at` (counting commits and effect records), `before` or after the write lands."""

    def __init__(self, clock: Clock, *, at: int | None = None, before: bool = True) -> None:
        super().__init__(clock=clock)
        self.at = at
        self.before = before
        self.writes = 0

    def _write(self, do: Any) -> Any:
        self.writes += 1
        hit = self.at is not None and self.writes == self.at
        if hit and self.before:
            raise Crash
        out = do()
        if hit:
            raise Crash
        return out

    def commit_step(self, run_id: str, worker: str, checkpoints: Sequence[Checkpoint], **kw: Any) -> RunRecord:
        return self._write(lambda: super(CrashingStore, self).commit_step(run_id, worker, checkpoints, **kw))  # type: ignore[no-any-return]

    def record_effect(self, run_id: str, key: str, result: Any) -> None:
        self._write(lambda: super(CrashingStore, self).record_effect(run_id, key, result))


class Order(BaseModel):
    amount: float
    items: list[int] = []
    prices: list[float] = []
    total: float = 0
    receipt: str | None = None


class Bank:
    """The outside world: executes a payment per idempotency key once (a key it saw returns its first result)."""

    def __init__(self) -> None:
        self.done: dict[str, str] = {}
        self.executions: Tally[str] = Tally()

    def pay(self, key: str, amount: float) -> str:
        if key not in self.done:
            self.executions[key] += 1
            self.done[key] = f"r-{len(self.done) + 1}-{amount:g}"
        return self.done[key]


def effect(ctx: StepContext, bank: Bank, name: str, amount: float) -> str:
    """What the tool runtime does for a side-effecting tool: reuse a recorded result, else call with the key."""
    key = ctx.idempotency_key(name)
    recorded = ctx.store.effect(ctx.run_id, key)
    if recorded is not None:
        return str(recorded)
    result = bank.pay(key, amount)
    ctx.store.record_effect(ctx.run_id, key, result)
    return result


def order_flow(bank: Bank, ran: Tally[str]) -> Flow:
    flow = Flow("order", state=Order)

    @flow.step()
    def plan(state: Order, ctx: StepContext) -> dict[str, Any]:
        ran["plan"] += 1
        return {"items": [1, 2, 3, 4]}

    @flow.step()
    def price(state: Order, ctx: StepContext) -> float:
        ran[f"price{ctx.item_index}"] += 1
        effect(ctx, bank, "hold", float(ctx.item))
        return float(ctx.item) * 1.5

    @flow.step()
    def add(state: Order, ctx: StepContext) -> dict[str, Any]:
        return {"total": sum(state.prices)}

    @flow.step()
    def pay(state: Order, ctx: StepContext) -> dict[str, Any]:
        ran["pay"] += 1
        return {"receipt": effect(ctx, bank, "charge", state.total)}

    flow.map("prices_of", over=lambda s: s.items, step="price", into="prices", concurrency=2)
    flow.start("plan")
    flow.edge("plan", "prices_of")
    flow.edge("prices_of", "add")
    flow.branch("add", lambda s: s.total > 0, {True: "pay", False: Flow.END})
    flow.edge("pay", Flow.END)
    return flow


async def finish(store: CrashingStore, clock: Clock, flow: Flow, run_id: str) -> RunRecord:
    """Run with worker after worker until the run ends; each crash leaves the lease to expire."""
    for attempt in range(30):
        engine = Engine(store, worker=f"w{attempt}", lease_s=30)
        try:
            record = await engine.run(flow, run_id)
        except Crash:
            store.at = None  # one crash per scenario
            clock.now += 31  # the dead worker's lease expires
            continue
        if record.status in ("succeeded", "failed", "cancelled"):
            return record
    raise AssertionError("the run never finished")


async def baseline() -> tuple[RunRecord, list[Checkpoint], int]:
    clock = Clock()
    store = CrashingStore(clock)
    flow = order_flow(Bank(), Tally())
    run = Engine(store, worker="w").start(flow, {"amount": 10}, project_id="p")
    done = await finish(store, clock, flow, run.id)
    return done, store.checkpoints(run.id), store.writes


async def test_an_uninterrupted_run() -> None:
    done, cps, writes = await baseline()
    assert done.status == "succeeded" and done.state["total"] == 15.0 and done.state["receipt"] == "r-5-15"
    assert writes == 13  # 8 commits + 5 effects: the crash points below
    assert [c.step for c in cps] == ["plan", *["prices_of"] * 5, "add", "pay"]


@pytest.mark.parametrize("before", [True, False], ids=["before-write", "after-write"])
@pytest.mark.parametrize("at", range(1, 14))
async def test_a_crash_at_any_write_resumes_to_the_same_end(at: int, before: bool) -> None:
    expected, expected_cps, _ = await baseline()
    clock = Clock()
    store = CrashingStore(clock, at=at, before=before)
    bank = Bank()
    ran: Tally[str] = Tally()
    flow = order_flow(bank, ran)
    run = Engine(store, worker="w").start(flow, {"amount": 10}, project_id="p")
    done = await finish(store, clock, flow, run.id)
    assert done.status == "succeeded"
    assert done.state == expected.state | {"receipt": done.state["receipt"]}
    assert done.state["receipt"] is not None and done.state["receipt"].endswith("-15")
    cps = store.checkpoints(run.id)
    recorded = [(c.step, c.item) for c in cps]
    assert len(recorded) == len(set(recorded)) == len(expected_cps)  # every step recorded, none twice
    assert list(bank.executions.values()) == [1] * 5  # 4 holds and 1 charge, each exactly once
    assert ran["plan"] == 1 or (at == 1 and ran["plan"] == 2)  # only an unrecorded step runs again


async def test_a_crash_while_compensating_resumes_the_compensation() -> None:
    clock = Clock()
    store = CrashingStore(clock)
    undone: list[str] = []
    flow = Flow("undo", state=Order)

    @flow.step(compensate="refund")
    def charge(state: Order, ctx: StepContext) -> dict[str, Any]:
        return {"receipt": "r-1"}

    @flow.step()
    def ship(state: Order, ctx: StepContext) -> dict[str, Any]:
        raise RuntimeError("warehouse closed")

    @flow.step()
    def refund(state: Order, ctx: StepContext) -> dict[str, Any]:
        undone.append(ctx.idempotency_key("refund"))
        if len(undone) == 1:
            raise Crash  # the worker dies while refunding
        return {"receipt": None}

    flow.start("charge")
    flow.edge("charge", "ship")
    flow.edge("ship", Flow.END)
    run = Engine(store, worker="w").start(flow, {"amount": 5}, project_id="p")
    done = await finish(store, clock, flow, run.id)
    assert done.status == "failed" and done.error is not None and done.error["step"] == "ship"
    assert done.state["receipt"] is None and len(set(undone)) == 1  # the same logical refund, run to its end
    assert [(c.step, c.status) for c in store.checkpoints(run.id)] == [
        ("charge", "succeeded"),
        ("ship", "failed"),
        ("refund", "compensated"),
    ]
