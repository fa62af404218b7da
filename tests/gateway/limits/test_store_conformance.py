"""The conformance suite every `LimitStore` backend passes (memory and Redis), including real concurrency
(50 operations at once) and, for Redis, two clients acting as two replicas."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import (
    CounterSettle,
    CounterSpec,
    CounterState,
    Hold,
    LimitStore,
    LimitStoreUnavailable,
    WindowSettle,
    WindowSpec,
)
from tests.conftest import REDIS_URL
from tests.gateway.limits.conftest import delete_prefix
from tests.support.servers import free_port

HOLD = 60_000


def rid(i: int | str) -> str:
    return f"r{i}-{random.getrandbits(32):x}"


class LimitStoreConformance:
    """Subclasses provide the fixtures `limit_store` and `replica` (another handle on the same state)."""

    async def test_window_admits_up_to_the_limit_then_says_when(self, limit_store: LimitStore, prefix: str) -> None:
        w = WindowSpec(prefix + "w", limit=3, amount=1, window_ms=60_000)
        results = [await limit_store.acquire(rid(i), [w], [], hold_ms=HOLD) for i in range(4)]
        assert results[:3] == [None, None, None]
        refusal = results[3]
        assert refusal is not None and refusal.kind == "window" and refusal.index == 0 and refusal.used == 3
        assert refusal.retry_after_ms is not None and 59_000 <= refusal.retry_after_ms <= 60_000

    async def test_window_weighs_amounts_and_never_admits_one_above_the_limit(
        self, limit_store: LimitStore, prefix: str
    ) -> None:
        key = prefix + "tpm"

        def spec(amount: int) -> list[WindowSpec]:
            return [WindowSpec(key, limit=100, amount=amount, window_ms=60_000)]

        assert await limit_store.acquire(rid(1), spec(60), [], hold_ms=HOLD) is None
        refused = await limit_store.acquire(rid(2), spec(50), [], hold_ms=HOLD)
        assert refused is not None and refused.used == 60 and refused.retry_after_ms is not None
        assert await limit_store.acquire(rid(3), spec(40), [], hold_ms=HOLD) is None
        never = await limit_store.acquire(rid(4), spec(101), [], hold_ms=HOLD)
        assert never is not None and never.retry_after_ms is None

    async def test_window_slides(self, limit_store: LimitStore, prefix: str) -> None:
        w = [WindowSpec(prefix + "w", limit=2, amount=1, window_ms=300)]
        assert await limit_store.acquire(rid(1), w, [], hold_ms=HOLD) is None
        await asyncio.sleep(0.15)
        assert await limit_store.acquire(rid(2), w, [], hold_ms=HOLD) is None
        refused = await limit_store.acquire(rid(3), w, [], hold_ms=HOLD)
        assert refused is not None and refused.retry_after_ms is not None
        assert refused.retry_after_ms <= 160  # the oldest entry leaves first, ~150 ms from now
        await asyncio.sleep(refused.retry_after_ms / 1000 + 0.02)
        assert await limit_store.acquire(rid(4), w, [], hold_ms=HOLD) is None  # the first entry left
        assert await limit_store.acquire(rid(5), w, [], hold_ms=HOLD) is not None

    async def test_acquire_is_all_or_nothing(self, limit_store: LimitStore, prefix: str) -> None:
        free = WindowSpec(prefix + "free", limit=10, amount=1, window_ms=60_000)
        full = WindowSpec(prefix + "full", limit=0, amount=1, window_ms=60_000)
        counter = CounterSpec(prefix + "c", limit=None, amount=5)
        refused = await limit_store.acquire(rid(1), [free, full], [counter], hold_ms=HOLD)
        assert refused is not None and refused.kind == "window" and refused.index == 1
        capped = CounterSpec(prefix + "capped", limit=0, amount=1)
        refused = await limit_store.acquire(rid(2), [free], [counter, capped], hold_ms=HOLD)
        assert refused is not None and refused.kind == "counter" and refused.index == 1
        # Neither refusal added anything: the free window still has all 10, the counter nothing reserved.
        assert await limit_store.read([counter.key]) == [CounterState(0, 0)]
        for i in range(10):
            assert await limit_store.acquire(rid(f"f{i}"), [free], [], hold_ms=HOLD) is None
        assert await limit_store.acquire(rid("over"), [free], [], hold_ms=HOLD) is not None

    async def test_settle_corrects_a_window_to_the_actual_amount(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "tpm"
        first = rid(1)
        assert await limit_store.acquire(first, [WindowSpec(key, 100, 80, 60_000)], [], hold_ms=HOLD) is None
        assert await limit_store.acquire(rid(2), [WindowSpec(key, 100, 85, 60_000)], [], hold_ms=HOLD) is not None
        await limit_store.settle(first, [WindowSettle(key, reserved=80, actual=10)], [])
        assert await limit_store.acquire(rid(3), [WindowSpec(key, 100, 85, 60_000)], [], hold_ms=HOLD) is None
        assert await limit_store.acquire(rid(4), [WindowSpec(key, 100, 6, 60_000)], [], hold_ms=HOLD) is not None

    async def test_counter_admits_while_anything_is_left(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "budget"
        a, b = rid("a"), rid("b")
        assert await limit_store.acquire(a, [], [CounterSpec(key, 100, 60)], hold_ms=HOLD) is None
        assert await limit_store.acquire(b, [], [CounterSpec(key, 100, 60)], hold_ms=HOLD) is None
        refused = await limit_store.acquire(rid("c"), [], [CounterSpec(key, 100, 60)], hold_ms=HOLD)
        assert refused is not None and refused.kind == "counter" and (refused.used, refused.reserved) == (0, 120)
        assert await limit_store.read([key]) == [CounterState(0, 120)]
        assert await limit_store.settle(a, [], [CounterSettle(key, actual=10)]) == []
        assert await limit_store.read([key]) == [CounterState(10, 60)]
        assert await limit_store.acquire(rid("d"), [], [CounterSpec(key, 100, 60)], hold_ms=HOLD) is None
        await limit_store.settle(b, [], [CounterSettle(key, actual=0)])  # an error: released, nothing spent
        assert await limit_store.read([key]) == [CounterState(10, 60)]

    async def test_a_settle_retried_after_it_was_applied_adds_nothing(
        self, limit_store: LimitStore, replica: LimitStore, prefix: str
    ) -> None:
        """The ledger retries a settle whose reply was lost; the spend must be counted once, on any replica."""
        key, window = prefix + "budget", prefix + "tpm"
        r = rid("retried")
        assert await limit_store.acquire(r, [WindowSpec(window, 100, 50, 60_000)], [CounterSpec(key, 100, 60)],
                                         hold_ms=HOLD) is None  # fmt: skip
        settle = ([WindowSettle(window, reserved=50, actual=20)], [CounterSettle(key, actual=30)])
        await limit_store.settle(r, *settle)
        await replica.settle(r, *settle)
        await limit_store.settle(r, *settle)
        assert await limit_store.read([key]) == [CounterState(30, 0)]
        assert await limit_store.acquire(rid(2), [WindowSpec(window, 100, 80, 60_000)], [], hold_ms=HOLD) is None
        assert await limit_store.acquire(rid(3), [WindowSpec(window, 100, 1, 60_000)], [], hold_ms=HOLD) is not None

    async def test_unlimited_counter_only_tracks(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "soft"
        for i in range(3):
            r = rid(i)
            assert await limit_store.acquire(r, [], [CounterSpec(key, None, 10**15)], hold_ms=HOLD) is None
            await limit_store.settle(r, [], [CounterSettle(key, actual=10**15)])
        assert await limit_store.read([key]) == [CounterState(3 * 10**15, 0)]

    async def test_exact_at_pico_dollar_scale(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "big"
        amount = 9_000_000_000_000_000_001  # 9 million USD and one pico-dollar: beyond float precision
        r = rid(1)
        assert await limit_store.acquire(r, [], [CounterSpec(key, None, amount)], hold_ms=HOLD) is None
        await limit_store.settle(r, [], [CounterSettle(key, actual=amount)])
        assert await limit_store.read([key]) == [CounterState(amount, 0)]

    async def test_unsettled_reservations_are_released_after_their_hold(
        self, limit_store: LimitStore, prefix: str
    ) -> None:
        key = prefix + "budget"
        crashed = rid("crashed")
        assert await limit_store.acquire(crashed, [], [CounterSpec(key, 100, 100)], hold_ms=150) is None
        assert await limit_store.acquire(rid(2), [], [CounterSpec(key, 100, 1)], hold_ms=HOLD) is not None
        await asyncio.sleep(0.25)
        late = rid(3)
        assert await limit_store.acquire(late, [], [CounterSpec(key, 100, 30)], hold_ms=HOLD) is None
        assert await limit_store.read([key]) == [CounterState(0, 30)]
        # A settle that arrives after its hold ran out still counts the spend, and never goes negative.
        await limit_store.settle(crashed, [], [CounterSettle(key, actual=40)])
        assert await limit_store.read([key]) == [CounterState(40, 30)]

    async def test_counters_expire(self, limit_store: LimitStore, prefix: str) -> None:
        at = CounterSpec(prefix + "day", None, 5, expire_at_ms=int(time.time() * 1000) + 200)
        idle = CounterSpec(prefix + "run", None, 5, idle_ttl_ms=200)
        assert await limit_store.acquire(rid(1), [], [at, idle], hold_ms=HOLD) is None
        assert await limit_store.read([at.key, idle.key]) == [CounterState(0, 5), CounterState(0, 5)]
        await asyncio.sleep(0.35)
        assert await limit_store.read([at.key, idle.key]) == [CounterState(0, 0), CounterState(0, 0)]

    async def test_alert_is_reported_once(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "soft"
        crossings = []
        for i in range(4):
            r = rid(i)
            assert await limit_store.acquire(r, [], [CounterSpec(key, None, 10)], hold_ms=HOLD) is None
            crossings.append(await limit_store.settle(r, [], [CounterSettle(key, actual=10, alert_above=25)]))
        assert crossings == [[], [], [0], []]

    async def test_seed_applies_once(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "seeded"
        assert await limit_store.seed(key, 70) is True
        assert await limit_store.seed(key, 70) is False
        assert await limit_store.read([key, prefix + "unknown"]) == [CounterState(70, 0), CounterState(0, 0)]
        refused = await limit_store.acquire(rid(1), [], [CounterSpec(key, 70, 1)], hold_ms=HOLD)
        assert refused is not None and refused.used == 70
        assert await limit_store.seed(key, 5, force=True) is True  # forced: added again
        assert await limit_store.read([key]) == [CounterState(75, 0)]

    async def test_a_counter_born_from_traffic_needs_no_seed(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "used"
        [fresh] = await limit_store.read([key])
        assert fresh.seeded is False
        assert await limit_store.acquire(rid(1), [], [CounterSpec(key, None, 3)], hold_ms=HOLD) is None
        [used] = await limit_store.read([key])
        assert used.seeded is True
        assert await limit_store.seed(key, 70) is False
        assert await limit_store.read([key]) == [CounterState(0, 3)]

    async def test_a_missing_budget_counter_is_reported_seeded_once_then_admitted_against(
        self, limit_store: LimitStore, replica: LimitStore, prefix: str
    ) -> None:
        key = prefix + "budget"
        spec = CounterSpec(key, 90, 20, needs_seed=True)
        refused = await limit_store.acquire(rid(1), [], [spec], hold_ms=HOLD)
        assert refused is not None and (refused.kind, refused.index) == ("unseeded", 0)
        assert await limit_store.read([key]) == [CounterState(0, 0)]  # nothing reserved on it
        # Two replicas seed it at once (each from its own count of the traces): one seed counts.
        seeded = await asyncio.gather(limit_store.seed(key, 70), replica.seed(key, 70))
        assert sorted(seeded) == [False, True]
        assert await limit_store.acquire(rid(2), [], [spec], hold_ms=HOLD) is None
        assert await limit_store.read([key]) == [CounterState(70, 20)]
        refused = await replica.acquire(rid(3), [], [spec], hold_ms=HOLD)
        assert refused is not None and (refused.kind, refused.used, refused.reserved) == ("counter", 70, 20)

    async def test_a_seed_restores_the_calls_in_flight(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "budget"
        deadline = int(time.time() * 1000) + HOLD
        flying, done_early = rid("flying"), rid("done-early")
        # A call that ended while the counter was missing settled on it before the seed: counted once, and not
        # held again although the ledger read before its settle still listed it as in flight.
        await limit_store.settle(done_early, [], [CounterSettle(key, actual=7)])
        holds = [Hold(flying, 30, deadline), Hold(done_early, 30, deadline)]
        assert await limit_store.seed(key, 50, holds=holds) is True
        assert await limit_store.read([key]) == [CounterState(57, 30)]
        spec = CounterSpec(key, 100, 20, needs_seed=True)
        assert await limit_store.acquire(rid(1), [], [spec], hold_ms=HOLD) is None
        refused = await limit_store.acquire(rid(2), [], [spec], hold_ms=HOLD)  # 57 + 30 + 20 >= 100
        assert refused is not None and refused.kind == "counter"
        await limit_store.settle(flying, [], [CounterSettle(key, actual=12)])  # the restored hold is released
        assert await limit_store.read([key]) == [CounterState(69, 20)]

    async def test_restored_holds_expire_like_any_reservation(self, limit_store: LimitStore, prefix: str) -> None:
        key = prefix + "budget"
        soon = int(time.time() * 1000) + 150
        assert await limit_store.seed(key, 0, holds=[Hold(rid("dead"), 100, soon)]) is True
        spec = CounterSpec(key, 100, 1, needs_seed=True)
        assert await limit_store.acquire(rid(1), [], [spec], hold_ms=HOLD) is not None
        await asyncio.sleep(0.25)
        assert await limit_store.acquire(rid(2), [], [spec], hold_ms=HOLD) is None

    async def test_a_retried_acquire_adds_nothing_twice(self, limit_store: LimitStore, prefix: str) -> None:
        w = WindowSpec(prefix + "tpm", limit=100, amount=40, window_ms=60_000)
        c = CounterSpec(prefix + "c", limit=None, amount=5)
        r = rid(1)
        assert await limit_store.acquire(r, [w], [c], hold_ms=HOLD) is None
        assert await limit_store.acquire(r, [w], [c], hold_ms=HOLD) is None  # the reply was lost; asked again
        assert await limit_store.acquire(r, [], [c], hold_ms=HOLD) is None
        assert await limit_store.read([c.key]) == [CounterState(0, 5)]
        assert await limit_store.acquire(rid(2), [w], [], hold_ms=HOLD) is None  # 40 + 40 of 100
        assert await limit_store.acquire(rid(3), [w], [], hold_ms=HOLD) is not None

    async def test_ping(self, limit_store: LimitStore) -> None:
        await limit_store.ping()

    async def test_fifty_concurrent_acquires_admit_exactly_the_limit(
        self, limit_store: LimitStore, replica: LimitStore, prefix: str
    ) -> None:
        w = [WindowSpec(prefix + "rpm", limit=17, amount=1, window_ms=60_000)]
        stores = [limit_store, replica]
        results = await asyncio.gather(*(stores[i % 2].acquire(rid(i), w, [], hold_ms=HOLD) for i in range(50)))
        assert sum(r is None for r in results) == 17

    async def test_fifty_concurrent_requests_overshoot_a_budget_by_at_most_one_worst_case(
        self, limit_store: LimitStore, replica: LimitStore, prefix: str
    ) -> None:
        key = prefix + "budget"
        limit, worst = 1_000, 90
        stores = [limit_store, replica]
        admitted = 0

        async def request(i: int) -> None:
            nonlocal admitted
            store = stores[i % 2]
            r = rid(i)
            if await store.acquire(r, [], [CounterSpec(key, limit, worst)], hold_ms=HOLD) is not None:
                return
            admitted += 1
            await asyncio.sleep(random.uniform(0, 0.02))  # the call
            await store.settle(r, [], [CounterSettle(key, actual=random.randint(worst // 2, worst))])

        await asyncio.gather(*(request(i) for i in range(50)))
        [state] = await limit_store.read([key])
        assert state.reserved == 0
        assert state.spent <= limit + worst
        assert 0 < admitted < 50


class TestMemoryLimitStore(LimitStoreConformance):
    @pytest.fixture
    def limit_store(self) -> LimitStore:
        return MemoryLimitStore()

    @pytest.fixture
    def replica(self, limit_store: LimitStore) -> LimitStore:
        return limit_store  # one process: the same state


class TestRedisLimitStore(LimitStoreConformance):
    @pytest.fixture
    async def limit_store(self, redis: Redis) -> AsyncIterator[LimitStore]:
        store = RedisLimitStore.from_url(REDIS_URL)
        yield store
        await store.aclose()

    @pytest.fixture
    async def replica(self, redis: Redis) -> AsyncIterator[LimitStore]:
        """A second client with its own connections: another replica sharing the Redis."""
        store = RedisLimitStore.from_url(REDIS_URL)
        yield store
        await store.aclose()

    @pytest.mark.parametrize("lost", ["counter", "every key of the prefix"])
    async def test_a_counter_redis_lost_is_reported_again(
        self, limit_store: LimitStore, redis: Redis, prefix: str, lost: str
    ) -> None:
        key = prefix + "budget"
        spec = CounterSpec(key, 100, 20, needs_seed=True)
        run = CounterSpec(prefix + "run", 10, 1)  # a run counter: starts from zero, never needs a seed
        assert await limit_store.seed(key, 60) is True
        assert await limit_store.acquire(rid(1), [], [spec, run], hold_ms=HOLD) is None
        await redis.delete(key, key + ":holds") if lost == "counter" else await delete_prefix(redis, prefix)
        refused = await limit_store.acquire(rid(2), [], [run, spec], hold_ms=HOLD)
        assert refused is not None and (refused.kind, refused.index) == ("unseeded", 1)
        assert await limit_store.read([key, run.key]) == [
            CounterState(0, 0),
            CounterState(0, 1 if lost == "counter" else 0),
        ]
        assert await limit_store.seed(key, 60) is True  # a fresh seed counts again
        assert await limit_store.acquire(rid(3), [], [spec], hold_ms=HOLD) is None
        assert await limit_store.read([key]) == [CounterState(60, 20)]

    async def test_an_unreachable_redis_is_one_clear_error(self) -> None:
        port = free_port()
        store = RedisLimitStore.from_url(f"redis://:secret@127.0.0.1:{port}/0")
        try:
            for call in (store.ping(), store.acquire(rid(1), [], [CounterSpec("k", 1, 1)], hold_ms=HOLD)):
                with pytest.raises(LimitStoreUnavailable) as caught:
                    await call
                message = str(caught.value)
                assert message == f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (Connection refused)"
        finally:
            await store.aclose()
