"""A Redis that loses the budget counters (restarted without persistence, flushed, keys evicted) while the
gateway runs: the next admission re-seeds each counter from the store's traces, so the hard limit still holds,
and the loss is logged. Redis on a key prefix of the test's own; the traces are stored as the server stores
them (StoreSink), since they are the ledger the counters are rebuilt from."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

import pilothouse.gateway.admission as admission_module
from pilothouse.gateway.limits.budgets import budget_key, budget_status
from pilothouse.gateway.limits.periods import period_window
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import LimitStoreUnavailable
from pilothouse.money import to_pico
from pilothouse.store.budgets import spend_since
from pilothouse.store.engine import open_store
from pilothouse.store.inflight import InflightCall, ReservedCounter, insert_calls
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.conftest import REDIS_URL
from tests.gateway.limits.conftest import delete_prefix
from tests.gateway.limits.test_admission import Harness, settings_for
from tests.support.servers import free_port


class Ledgered(Harness):
    """The admission harness, storing each call's trace as the server does."""

    sink: StoreSink

    async def spend(self) -> bool:
        """One call; True when it was admitted (its trace is committed before this returns)."""
        trace, error = await self.call()
        if error is not None:
            assert error.status == 429 and error.code == "budget_exceeded", error.message
            return False
        await self.sink.write(trace)
        return True

    def traced_spend(self) -> Decimal:
        with self.store.connect() as conn:
            return spend_since(conn, project_id=self.project, scope="key", subject=self.key, since=0)


@pytest.fixture
async def ledgered(redis: Redis, tmp_path: Path, prefix: str) -> AsyncIterator[Ledgered]:
    limit_store = RedisLimitStore.from_url(REDIS_URL)
    store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
    h = Ledgered(settings_for(prefix).model_copy(update={"data_dir": tmp_path}), store, limit_store)
    h.sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    yield h
    h.sink.close()
    h.audit.close()
    await limit_store.aclose()
    store.dispose()


@pytest.mark.parametrize("lost", ["the budget's keys", "every key of the prefix"])
async def test_a_lost_counter_is_reseeded_from_the_traces_and_the_budget_holds(
    ledgered: Ledgered, redis: Redis, prefix: str, lost: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = ledgered
    assert await h.spend()  # before any budget: what one call costs
    cost = h.traced_spend()
    assert cost > 0
    budget = h.define("budget", scope="key", subject=h.key, period="day", limit_usd=cost * 10, mode="hard")
    for _ in range(4):
        assert await h.spend()
    key = budget_key(prefix, budget, period_window("day", time.time()))
    assert await redis.exists(key) == 1

    if lost == "the budget's keys":
        assert await redis.delete(key, key + ":holds") >= 1
    else:
        await delete_prefix(redis, prefix)  # a Redis restarted without persistence: nothing is left
    caplog.set_level(logging.WARNING, "pilothouse.limits")
    # Spend as long as the budget admits: without the re-seed the counter would start again from zero and
    # admit ten more calls; with it, exactly the five the limit has left.
    admitted = 0
    while await h.spend():
        admitted += 1
        assert admitted <= 20, "the budget no longer holds"
    assert admitted == 5
    assert h.traced_spend() == cost * 10  # spend < limit admits; each call costs the same: exactly the limit
    assert "was missing from the limit store" in caplog.text and budget.id in caplog.text
    [row] = await budget_status(h.admission.store, prefix, [budget], time.time())
    assert Decimal(row["spent_usd"]) == cost * 10 and row["exceeded"] is True


async def test_budget_status_reseeds_a_lost_counter(ledgered: Ledgered, redis: Redis, prefix: str) -> None:
    """`GET /api/budgets` after the loss shows the traces' spend, not zero (it seeds what is missing)."""
    h = ledgered
    budget = h.define("budget", scope="key", subject=h.key, period="month", limit_usd=Decimal(1), mode="hard")
    for _ in range(3):
        assert await h.spend()
    await delete_prefix(redis, prefix)
    [unseeded] = await budget_status(h.admission.store, prefix, [budget], time.time())
    assert unseeded["spent_usd"] == "0"  # without the store: only what Redis has
    [row] = await budget_status(h.admission.store, prefix, [budget], time.time(), store=h.store)
    assert Decimal(row["spent_usd"]) == h.traced_spend() > 0


async def test_a_new_period_seeds_once_per_process(ledgered: Ledgered, monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent requests that all find the counter missing cause one count of the traces, not one each."""
    h = ledgered
    h.define("budget", scope="key", subject=h.key, period="day", limit_usd=Decimal(1), mode="hard")
    counted = 0
    real = admission_module.seed_budget

    async def counting(*args: object, **kwargs: object) -> bool:
        nonlocal counted
        counted += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(admission_module, "seed_budget", counting)
    results = await asyncio.gather(*(h.call() for _ in range(20)))
    assert all(error is None for _, error in results)
    assert counted == 1


async def test_the_reseed_restores_the_calls_in_flight(ledgered: Ledgered, redis: Redis, prefix: str) -> None:
    """Calls admitted before the loss and still running are in the write-ahead ledger: the re-seed reserves
    them again, so new calls cannot take the budget they hold, and their settles release them."""
    h = ledgered
    budget = h.define("budget", scope="key", subject=h.key, period="day", limit_usd=Decimal(1), mode="hard")
    assert await h.spend()
    spent = h.traced_spend()
    tickets = []
    for _ in range(3):  # admitted and recorded as in flight, as the server does before the upstream call
        trace = TraceRecord(project_id=h.project, name="chat", api_key_id=h.key)
        prep = h.gateway.prepare_chat({"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}, trace)
        ticket = await h.admission.admit(prep, trace, [])
        assert ticket is not None
        [check] = ticket.budgets
        call = InflightCall(
            trace_id=trace.id,
            project_id=h.project,
            reservation=ticket.reservation,
            input_tokens=1,
            output_tokens=10,
            cost_pico=check.spec.amount,
            process="test",
            created_at=time.time(),
            expires_at=time.time() + 900,
            counters=(ReservedCounter(check.spec.key, check.spec.amount, "budget"),),
        )
        with h.store.begin() as conn:
            insert_calls(conn, [call])
        tickets.append((ticket, check.spec.amount))
    reserved = sum(amount for _, amount in tickets)

    await delete_prefix(redis, prefix)  # Redis restarted while the three calls run
    assert await h.spend()  # admitted against the re-seeded counter
    after_one = h.traced_spend()
    [row] = await budget_status(h.admission.store, prefix, [budget], time.time())
    assert Decimal(row["spent_usd"]) == after_one > spent
    assert to_pico(Decimal(row["reserved_usd"])) == reserved  # the three calls in flight hold theirs again
    for ticket, _ in tickets:  # they end: their reservations go, their (zero) cost is counted
        await ticket.settle()
    [row] = await budget_status(h.admission.store, prefix, [budget], time.time())
    assert (Decimal(row["spent_usd"]), row["reserved_usd"]) == (after_one, "0")


async def test_start_without_redis_is_one_line_without_the_password(tmp_path: Path, prefix: str) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
    h = Harness(settings_for(prefix).model_copy(update={"data_dir": tmp_path}), store, RedisLimitStore.from_url(url))
    try:
        with pytest.raises(LimitStoreUnavailable) as caught:
            await h.admission.start()
        message = str(caught.value)
        assert "\n" not in message and "hunter2" not in message
        assert message.startswith(f"cannot reach Redis at redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]} ")
        assert "(Connection refused): start it or fix PILOTHOUSE_REDIS_URL" in message
    finally:
        h.audit.close()
        await h.admission.store.aclose()
        store.dispose()
