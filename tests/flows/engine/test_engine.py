"""The engine end to end on the memory store: branches, approvals, maps, retries, timeouts, fallbacks,
compensation, terminal errors and spans."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.flows import Approval, Engine, Flow, FlowInputError, MemoryCheckpointStore, Retry, StepContext
from tests.flows.engine.conftest import SLEPT, Spans


class Refund(BaseModel):
    amount: float
    note: str = ""
    items: list[int] = []
    scores: list[int] = []
    log: list[str] = []


def refund_flow(calls: list[str]) -> Flow:
    flow = Flow("refund", state=Refund)

    @flow.step()
    def check(state: Refund, ctx: StepContext) -> dict[str, Any]:
        calls.append("check")
        return {"note": "checked", "items": [1, 2, 3]}

    @flow.step()
    async def score(state: Refund, ctx: StepContext) -> int:
        calls.append(f"score{ctx.item_index}")
        return int(ctx.item) * 10

    flow.map("each", over=lambda s: s.items, step="score", into="scores", concurrency=2)
    flow.approval("approve", message=lambda s: f"Refund {s.amount}?")

    @flow.step()
    def pay(state: Refund, ctx: StepContext) -> dict[str, Any]:
        calls.append("pay")
        return {"note": f"paid {state.amount}"}

    def size(s: Refund) -> str:
        return "big" if s.amount > 100 else "small"

    flow.start("check")
    flow.edge("check", "each")
    flow.branch("each", size, {"big": "approve", "small": "pay"})
    flow.edge("approve", "pay")
    flow.edge("pay", Flow.END)
    return flow


async def test_a_small_refund_runs_straight_through(engine: Engine, mem: MemoryCheckpointStore, spans: Spans) -> None:
    calls: list[str] = []
    flow = refund_flow(calls)
    run = engine.start(flow, {"amount": 20}, project_id="p")
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded" and done.next_steps == () and done.error is None
    assert done.state["note"] == "paid 20.0" and done.state["scores"] == [10, 20, 30]
    assert sorted(calls) == ["check", "pay", "score0", "score1", "score2"]
    cps = mem.checkpoints(run.id)
    assert [c.step for c in cps] == ["check", "each", "each", "each", "each", "pay"]
    assert sorted(c.item for c in cps[1:4]) == [0, 1, 2] and cps[4].item is None  # items, then the map
    assert cps[4].decision == {"condition": "size", "value": "small", "to": "pay"}
    assert done.spent["steps"] == 6 and done.lease_owner is None
    assert spans.names().count("each") == 1 and spans.names().count("score") == 3
    map_span = next(s for t in spans.traces for s in t.spans if s.name == "each")
    item_spans = [s for t in spans.traces for s in t.spans if s.name == "score"]
    assert all(s.parent_id == map_span.id and s.kind == "step" for s in item_spans)
    assert map_span.attributes["pilothouse.step.decision"]["value"] == "small"
    assert {t.id for t in spans.traces} == {run.trace_id} and all(t.source == "flow" for t in spans.traces)


async def test_a_big_refund_waits_for_approval_then_finishes(engine: Engine, mem: MemoryCheckpointStore) -> None:
    calls: list[str] = []
    flow = refund_flow(calls)
    run = engine.start(flow, {"amount": 120}, project_id="p")
    waiting = await engine.run(flow, run.id)
    assert waiting.status == "waiting_for_approval" and waiting.next_steps == ("approve",)
    assert waiting.lease_owner is None and "pay" not in calls
    assert mem.checkpoints(run.id)[-1].output == {"message": "Refund 120.0?"}
    assert (await engine.run(flow, run.id)).status == "waiting_for_approval"  # nothing to do until decided
    mem.decide(Approval(run.id, "approve", "approved", "alice", comment="fine", state_edits={"amount": 110}))
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded" and done.state["note"] == "paid 110.0"
    assert calls.count("check") == 1 and calls.count("pay") == 1  # nothing ran twice
    statuses = [(c.step, c.status) for c in mem.checkpoints(run.id) if c.item is None]
    assert statuses[-4:] == [
        ("approve", "waiting"),
        ("approve", "approved"),
        ("approve", "succeeded"),
        ("pay", "succeeded"),
    ]


async def test_a_rejection_fails_the_run_and_names_the_person(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = refund_flow([])
    run = engine.start(flow, {"amount": 500}, project_id="p")
    await engine.run(flow, run.id)
    mem.decide(Approval(run.id, "approve", "rejected", "bob", comment="too much"))
    done = await engine.run(flow, run.id)
    assert done.status == "failed" and done.error is not None
    assert done.error["step"] == "approve" and done.error["cause"] == "ApprovalRejected"
    assert "rejected by bob: too much" in done.error["message"] and done.error["state"]["amount"] == 500


async def test_bad_input_is_refused_before_a_run_exists(engine: Engine, mem: MemoryCheckpointStore) -> None:
    with pytest.raises(FlowInputError, match="amount: Field required"):
        engine.start(refund_flow([]), {"note": "x"}, project_id="p")
    with pytest.raises(ValueError, match="unknown budget limit"):
        engine.start(refund_flow([]), {"amount": 1}, project_id="p", budget={"euros": 3})
    assert mem.list_runs("p") == []


class Counter(BaseModel):
    n: int = 0
    log: list[str] = []


async def test_retries_back_off_and_only_for_the_named_errors(engine: Engine, mem: MemoryCheckpointStore) -> None:
    attempts: list[int] = []
    flow = Flow("retry", state=Counter)

    @flow.step(retry=Retry(attempts=4, backoff_s=0.5, multiplier=2, on=(ConnectionError,)))
    def flaky(state: Counter, ctx: StepContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("upstream reset")
        return {"n": ctx.attempt}

    @flow.step(retry=Retry(attempts=5, backoff_s=0.1, on=(ConnectionError,)))
    def broken(state: Counter, ctx: StepContext) -> dict[str, Any]:
        attempts.append(100 + ctx.attempt)
        raise KeyError("missing")

    flow.start("flaky")
    flow.edge("flaky", "broken")
    flow.edge("broken", Flow.END)
    run = engine.start(flow, {}, project_id="p")
    done = await engine.run(flow, run.id)
    assert attempts == [1, 2, 3, 101]  # a KeyError is not retried
    assert SLEPT == [0.5, 1.0]
    assert done.status == "failed" and done.error is not None
    assert done.error["step"] == "broken" and done.error["cause"] == "KeyError" and done.error["attempts"] == 1
    assert done.error["state"] == {"n": 3, "log": []}
    first = mem.checkpoints(run.id)[0]
    assert first.step == "flaky" and first.attempt == 3 and first.status == "succeeded"
    failed = mem.checkpoints(run.id)[-1]
    assert failed.status == "failed" and failed.error is not None and failed.error["cause"] == "KeyError"


async def test_a_slow_step_times_out_and_its_fallback_takes_over(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = Flow("slow", state=Counter)

    @flow.step(timeout_s=0.05, retry=Retry(attempts=2, backoff_s=0), fallback="cached")
    async def fetch(state: Counter, ctx: StepContext) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {"n": 1}

    @flow.step()
    def cached(state: Counter, ctx: StepContext) -> dict[str, Any]:
        return {"n": 42}

    @flow.step()
    def after(state: Counter, ctx: StepContext) -> dict[str, Any]:
        return {"log": [*state.log, "after"]}

    flow.start("fetch")
    flow.edge("fetch", "after")
    flow.edge("after", Flow.END)
    run = engine.start(flow, {}, project_id="p")
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded" and done.state == {"n": 42, "log": ["after"]}
    cps = mem.checkpoints(run.id)
    assert [(c.step, c.status, c.attempt) for c in cps] == [
        ("fetch", "failed", 2),
        ("cached", "succeeded", 1),
        ("after", "succeeded", 1),
    ]
    assert cps[0].error is not None and cps[0].error["cause"] == "StepTimeout"
    assert "timed out after 0.05s" in cps[0].error["message"]


async def test_failure_compensates_finished_steps_newest_first(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = Flow("trip", state=Counter)

    def step(name: str, *, fail: bool = False, compensate: str | None = None) -> None:
        def fn(state: Counter, ctx: StepContext) -> dict[str, Any]:
            if fail:
                raise RuntimeError(f"{name} is down")
            return {"log": [*state.log, name]}

        flow.step(name, compensate=compensate)(fn)

    step("book_flight", compensate="cancel_flight")
    step("book_hotel", compensate="cancel_hotel")
    step("note")
    step("book_car", fail=True)
    step("cancel_flight")
    step("cancel_hotel")
    flow.start("book_flight")
    flow.edge("book_flight", "book_hotel")
    flow.edge("book_hotel", "note")
    flow.edge("note", "book_car")
    flow.edge("book_car", Flow.END)
    run = engine.start(flow, {}, project_id="p")
    done = await engine.run(flow, run.id)
    assert done.status == "failed" and done.error is not None
    assert done.error["step"] == "book_car" and done.error["message"] == "book_car is down"
    assert done.error["state"]["log"] == ["book_flight", "book_hotel", "note"]  # the state when it failed
    assert done.state["log"] == ["book_flight", "book_hotel", "note", "cancel_hotel", "cancel_flight"]
    tail = [(c.step, c.status, c.input) for c in mem.checkpoints(run.id)][-3:]
    assert tail == [
        ("book_car", "failed", None),
        ("cancel_hotel", "compensated", {"for_step": "book_hotel", "for_seq": 2}),
        ("cancel_flight", "compensated", {"for_step": "book_flight", "for_seq": 1}),
    ]


async def test_a_step_returning_a_bad_update_fails_with_a_clear_error(engine: Engine) -> None:
    flow = Flow("bad", state=Counter)

    @flow.step()
    def wrong(state: Counter, ctx: StepContext) -> dict[str, Any]:
        return {"n": "not a number"}

    flow.start("wrong")
    flow.edge("wrong", Flow.END)
    done = await engine.run(flow, engine.start(flow, {}, project_id="p").id)
    assert done.status == "failed" and done.error is not None and done.error["cause"] == "ValidationError"
    other = Flow("bad2", state=Counter)

    @other.step()
    def unknown(state: Counter, ctx: StepContext) -> dict[str, Any]:
        return {"nope": 1}

    other.start("unknown")
    other.edge("unknown", Flow.END)
    done = await engine.run(other, engine.start(other, {}, project_id="p").id)
    assert done.error is not None and "does not have: ['nope']" in done.error["message"]


async def test_a_map_item_that_fails_names_the_item(engine: Engine, mem: MemoryCheckpointStore) -> None:
    flow = Flow("m", state=Refund)

    @flow.step()
    def one(state: Refund, ctx: StepContext) -> int:
        if ctx.item == 3:
            raise ValueError("three is bad")
        return int(ctx.item)

    flow.map("each", over=lambda s: s.items, step="one", into="scores", concurrency=1)
    flow.start("each")
    flow.edge("each", Flow.END)
    done = await engine.run(flow, engine.start(flow, {"amount": 1, "items": [1, 2, 3, 4]}, project_id="p").id)
    assert done.status == "failed" and done.error is not None
    assert done.error["step"] == "each" and done.error["cause"] == "MapItemFailed"
    assert "item 2 of map 'each' failed: ValueError: three is bad" in done.error["message"]


async def test_the_idempotency_key_is_stable_per_visit_and_item(engine: Engine) -> None:
    keys: list[str] = []
    flow = Flow("k", state=Counter)

    @flow.step(retry=Retry(attempts=2, backoff_s=0))
    def side(state: Counter, ctx: StepContext) -> dict[str, Any]:
        keys.append(ctx.idempotency_key("charge"))
        if ctx.attempt == 1:
            raise RuntimeError("retry me")
        return {"n": state.n + 1}

    flow.start("side")
    flow.branch("side", lambda s: s.n < 2, {True: "side", False: Flow.END})
    flow.loop_bound("side", max_visits=5)
    run = engine.start(flow, {}, project_id="p")
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded" and done.state["n"] == 2
    assert keys == [f"{run.id}/side#0/charge"] * 2 + [f"{run.id}/side#1/charge"] * 2
