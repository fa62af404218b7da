"""The write-ahead ledger on SQLite and PostgreSQL with the Redis LimitStore (its own key prefix): calls a dead
replica left in flight are charged at their reservation and traced `unknown_outcome` exactly once, settles
Redis refused are retried until the counters are exact, and reconciliation reports and fixes drift."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from pilothouse.errors import ApiError
from pilothouse.gateway.limits.budgets import budget_key
from pilothouse.gateway.limits.ledger import Ledger
from pilothouse.gateway.limits.periods import period_window
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import CounterSettle, WindowSettle
from pilothouse.money import to_pico
from pilothouse.store import inflight
from pilothouse.store.engine import Store
from pilothouse.store.inflight import ReservedCounter
from pilothouse.store.migrate import alembic_config
from pilothouse.store.tables import inflight_calls, traces
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.conftest import REDIS_URL
from tests.gateway.limits.test_admission import Harness, settings_for


class CuttableRedis(RedisLimitStore):
    """Redis whose settles fail while `cut` (the link went down between admission and settlement)."""

    cut = False

    async def settle(self, reservation: str, windows: Any, counters: Any) -> list[int]:
        if self.cut:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().settle(reservation, windows, counters)


def dead_process() -> str:
    """The id of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:ended"


@pytest.fixture
async def harness(store: Store, redis: Redis, prefix: str, tmp_path: Path) -> AsyncIterator[Harness]:
    limits = CuttableRedis.from_url(REDIS_URL)
    settings = settings_for(prefix, settle_retry_s=0.01).model_copy(update={"data_dir": tmp_path})
    h = Harness(settings, store, limits)
    h.admission.ledger = Ledger(settings, store, limits, process="this-host:1:live")
    h.define("budget", scope="key", subject=h.key, period="month", limit_usd=Decimal(1), mode="hard")
    yield h
    await h.admission.ledger.aclose()
    h.audit.close()
    await limits.aclose()


def _key(h: Harness) -> str:
    budget = h.admission.definitions.index.all_budgets()[0]
    return budget_key(h.settings.limits.redis_prefix, budget, period_window(budget.period, time.time()))


def _ledger(h: Harness) -> Ledger:
    assert h.admission.ledger is not None
    return h.admission.ledger


async def _spent(h: Harness) -> tuple[int, int]:
    state = (await h.admission.store.read([_key(h)]))[0]
    return state.spent, state.reserved


def _rows(store: Store) -> list[inflight.InflightCall]:
    with store.connect() as conn:
        return inflight.list_calls(conn)


def _traced(store: Store) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(traces.c.id, traces.c.status, traces.c.cost_usd)).all())


async def _left_in_flight(h: Harness, process: str, cost_pico: int = 86_000_000) -> TraceRecord:
    """What a replica that admitted a call and was killed during it leaves: a reservation in Redis (no settle)
    and the call's write-ahead record, by a Ledger of that replica."""
    trace = TraceRecord(project_id=h.project, name="chat", api_key_id=h.key, model="fake-chat")
    key = _key(h)
    from pilothouse.gateway.limits.store import CounterSpec

    reservation = trace.id[:16]
    spec = CounterSpec(key, to_pico(Decimal(1)), cost_pico, needs_seed=False)
    assert await h.admission.store.acquire(reservation, [], [spec], hold_ms=900_000) is None
    dead = Ledger(h.settings, h.store, h.admission.store, process=process)
    try:
        await dead.open(trace, reservation, (3, 10, cost_pico), [], [ReservedCounter(key, cost_pico, "budget")])
    finally:
        await asyncio.to_thread(dead.writer.close)
    return trace


# ------------------------------------------------------------------------------------------- recovery


async def test_a_dead_replicas_call_is_charged_at_its_reservation_once_although_two_recover_it(
    harness: Harness,
) -> None:
    await harness.call()  # a finished call first: spent is its actual cost
    spent_before, _ = await _spent(harness)
    assert spent_before > 0
    trace = await _left_in_flight(harness, dead_process())
    assert await _spent(harness) == (spent_before, 86_000_000)

    other = Ledger(harness.settings, harness.store, harness.admission.store, process="this-host:2:other")
    try:
        counts = await asyncio.gather(_ledger(harness).recover(), other.recover())
    finally:
        await other.aclose()
    assert sorted(counts) == [0, 1]
    assert await _spent(harness) == (spent_before + 86_000_000, 0)  # charged in full, never released as unspent
    recovered = [row for row in _traced(harness.store) if row.id == trace.id]
    assert [(r.status, r.cost_usd) for r in recovered] == [("unknown_outcome", Decimal("0.000086"))]
    assert [r for r in _rows(harness.store) if r.trace_id == trace.id] == []
    # Later passes find nothing more to do.
    assert await _ledger(harness).recover(time.time() + 10_000) == 0
    assert await _ledger(harness).retry_settles(time.time() + 10_000) == 0
    assert await _spent(harness) == (spent_before + 86_000_000, 0)


async def test_a_live_replicas_call_waits_for_its_reservation_and_the_deadline(harness: Harness) -> None:
    alive = f"{socket.gethostname()}:{__import__('os').getpid()}:another-ledger"  # this process: alive
    await _left_in_flight(harness, alive)
    ledger = _ledger(harness)
    assert await ledger.recover() == 0
    call = _rows(harness.store)[0]
    assert await ledger.recover(call.expires_at - 1) == 0  # reservation not expired yet
    assert await ledger.recover(max(call.expires_at, call.created_at + ledger.deadline_s) + 1) == 1
    assert [r.status for r in _traced(harness.store)] == ["unknown_outcome"]


async def test_a_call_whose_trace_is_stored_is_never_charged_again(harness: Harness) -> None:
    trace = await _left_in_flight(harness, dead_process())
    sink = StoreSink(harness.store, spill_path=harness.settings.data_dir / "spill.jsonl")
    try:
        # As a spilled trace replayed at the next start: the trace arrives after its replica died.
        trace.finish()
        await sink.write(trace)
    finally:
        sink.close()
    assert _rows(harness.store) == []  # stored with its trace, in the same transaction
    assert await _ledger(harness).recover() == 0
    assert [r.status for r in _traced(harness.store)] == ["ok"]
    assert (await _spent(harness))[0] == 0


async def test_a_record_beside_a_stored_trace_is_dropped_uncharged(harness: Harness) -> None:
    trace = await _left_in_flight(harness, dead_process())
    with harness.store.begin() as conn:  # a trace stored without ending its record (an older writer)
        conn.execute(traces.insert(), [trace.row()])
    assert await _ledger(harness).recover() == 0
    assert _rows(harness.store) == []
    assert (await _spent(harness))[0] == 0


# ------------------------------------------------------------------------------------ failed settles


async def test_a_settle_redis_refused_is_retried_until_the_counters_are_exact(harness: Harness) -> None:
    limits = harness.admission.store
    assert isinstance(limits, CuttableRedis)
    sink = StoreSink(harness.store, spill_path=harness.settings.data_dir / "spill.jsonl")
    try:
        first, error = await harness.call()
        assert error is None
        await sink.write(first)
        limits.cut = True  # Redis goes away between admission and settlement
        second, error = await harness.call(content="hello there again")
        assert error is None
        await sink.write(second)
        pending = _rows(harness.store)
        assert [(p.trace_id, p.status) for p in pending] == [(second.id, "settle_pending")]
        assert pending[0].actual_cost_pico == to_pico(second.totals()[2])
        ledger = _ledger(harness)
        assert await ledger.retry_settles(time.time() + 1) == 0  # still cut: kept, retried later
        assert _rows(harness.store)[0].attempts == 1
        limits.cut = False
        assert await ledger.retry_settles(time.time() + 3600) == 1
    finally:
        sink.close()
    with harness.store.connect() as conn:
        booked = conn.execute(select(func.sum(traces.c.cost_usd))).scalar_one()
    assert await _spent(harness) == (to_pico(first.totals()[2]) + to_pico(second.totals()[2]), 0)
    assert (await _spent(harness))[0] == to_pico(booked)  # Redis equals the ledger
    assert _rows(harness.store) == []


async def test_a_call_that_cannot_be_recorded_is_refused_and_its_reservation_released(harness: Harness) -> None:
    await asyncio.to_thread(_ledger(harness).writer.close)  # the store stopped taking writes
    _, error = await harness.call()
    assert isinstance(error, ApiError) and error.status == 503 and error.code == "limits_unavailable"
    assert await _spent(harness) == (0, 0)


# ------------------------------------------------------------------------------------ reconciliation


async def test_reconciliation_reports_drift_and_moves_redis_to_the_ledger(harness: Harness, redis: Redis) -> None:
    sink = StoreSink(harness.store, spill_path=harness.settings.data_dir / "spill.jsonl")
    try:
        for _ in range(3):
            trace, error = await harness.call()
            assert error is None
            await sink.write(trace)
    finally:
        sink.close()
    booked, _ = await _spent(harness)
    key, ledger = _key(harness), _ledger(harness)
    budgets = harness.admission.definitions.index.all_budgets()
    assert [d.outcome for d in await ledger.reconcile(budgets)] == ["ok"]

    await redis.hset(key, "spent", booked - 7_900)  # a settle that never arrived
    (drift,) = await ledger.reconcile(budgets, fix=False)
    assert (drift.outcome, drift.drift, drift.ledger) == ("drift", -7_900, booked)
    assert drift.to_dict()["drift_usd"] == "-7.9E-9"
    assert (await _spent(harness))[0] == booked - 7_900  # reported only
    (drift,) = await ledger.reconcile(budgets)
    assert (drift.outcome, drift.drift) == ("corrected", -7_900)
    assert (await _spent(harness))[0] == booked

    await redis.hset(key, "spent", booked + 5_000)  # a settle counted twice
    (drift,) = await ledger.reconcile(budgets)
    assert (drift.outcome, drift.drift) == ("corrected", 5_000)
    assert (await _spent(harness))[0] == booked

    # A call in flight may already be settled in Redis before its trace is stored: within the band.
    await _left_in_flight(harness, "elsewhere:1:live", cost_pico=10_000)
    await redis.hset(key, "spent", booked + 10_000)
    (drift,) = await ledger.reconcile(budgets)
    assert (drift.outcome, drift.in_flight) == ("ok", 10_000)
    await redis.hset(key, "spent", booked + 25_000)
    (drift,) = await ledger.reconcile(budgets)
    assert (drift.outcome, drift.drift) == ("corrected", 15_000)
    assert (await _spent(harness))[0] == booked + 10_000  # never below what is in flight


async def test_reconciliation_loses_no_settle_that_lands_during_it(harness: Harness, redis: Redis) -> None:
    key, ledger = _key(harness), _ledger(harness)
    budgets = harness.admission.definitions.index.all_budgets()
    sink = StoreSink(harness.store, spill_path=harness.settings.data_dir / "spill.jsonl")
    try:
        await sink.write((await harness.call())[0])
    finally:
        sink.close()
    booked, _ = await _spent(harness)
    await redis.hset(key, "spent", booked + 1_000)
    real_read = harness.admission.store.read

    async def read_then_settle(keys: Any) -> Any:  # a settle lands after the counter was read
        states = await real_read(keys)
        await harness.admission.store.settle("late", [], [CounterSettle(key, 500)])
        return states

    harness.admission.store.read = read_then_settle  # type: ignore[method-assign]
    (drift,) = await ledger.reconcile(budgets)
    harness.admission.store.read = real_read  # type: ignore[method-assign]
    assert drift.outcome == "changed"
    assert (await _spent(harness))[0] == booked + 1_500  # untouched: the next pass decides


# ------------------------------------------------------------------------------------------ schema


def test_migration_0005_widens_trace_status_and_keeps_rows(store: Store) -> None:
    from alembic import command

    with store.begin() as conn:
        from pilothouse.store.keys import create_key
        from pilothouse.store.projects import create_project

        project = create_project(conn, "m").id
        create_key(conn, project_id=project, name="k", role="service")
        trace = TraceRecord(project_id=project, name="chat")
        trace.span("llm", "chat")
        conn.execute(traces.insert(), [trace.row()])
    cfg = alembic_config(store.engine)
    command.downgrade(cfg, "0004_owner_role")
    command.upgrade(cfg, "head")
    with store.begin() as conn:
        conn.execute(traces.update().values(status="unknown_outcome"))
        assert conn.execute(select(traces.c.status)).scalar_one() == "unknown_outcome"
        assert conn.execute(select(func.count()).select_from(inflight_calls)).scalar_one() == 0


def test_settles_of_a_record_use_its_actual_amounts() -> None:
    from pilothouse.gateway.limits.ledger_recovery import settle_of

    call = inflight.InflightCall(
        trace_id="t",
        project_id="p",
        reservation="r",
        input_tokens=3,
        output_tokens=10,
        cost_pico=86,
        process="h:1:n",
        created_at=0,
        expires_at=1,
        windows=(("w", 13),),
        counters=(
            ReservedCounter("b", 86, "budget"),
            ReservedCounter("c", 1, "calls"),
            ReservedCounter("t", 13, "tokens"),
        ),
        status=inflight.SETTLE_PENDING,
        actual_tokens=6,
        actual_cost_pico=40,
    )
    windows, counters = settle_of(call)
    assert windows == [WindowSettle("w", 13, 6)]
    assert [(c.key, c.actual) for c in counters] == [("b", 40), ("c", 1), ("t", 6)]


async def test_budgets_reconcile_command_prints_and_fixes_drift(
    harness: Harness, redis: Redis, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from pilothouse.cli.main import app

    sink = StoreSink(harness.store, spill_path=tmp_path / "spill.jsonl")
    try:
        await sink.write((await harness.call())[0])
    finally:
        sink.close()
    booked, _ = await _spent(harness)
    await redis.hset(_key(harness), "spent", booked - 7_900)
    config = tmp_path / "pilothouse.toml"
    config.write_text(f'[limits]\nredis_prefix = "{prefix}"\n', encoding="utf-8")
    monkeypatch.setenv("PILOTHOUSE_REDIS_URL", REDIS_URL)
    url = harness.store.engine.url.render_as_string(hide_password=False)
    args = ["budgets", "reconcile", "-c", str(config), "--database-url", url, "--json"]
    runner = CliRunner()
    reported = await asyncio.to_thread(runner.invoke, app, [*args, "--report"])
    assert reported.exit_code == 1, reported.output
    (row,) = json.loads(reported.output)
    assert (row["outcome"], row["drift_usd"]) == ("drift", "-7.9E-9")
    fixed = await asyncio.to_thread(runner.invoke, app, args)
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.output)[0]["outcome"] == "corrected"
    assert (await _spent(harness))[0] == booked
