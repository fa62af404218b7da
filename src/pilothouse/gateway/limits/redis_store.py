"""`RedisLimitStore`: limit state shared by every replica through Redis (PILOTHOUSE_REDIS_URL).

Each operation is one Lua script (redis_lua.py), run by EVALSHA: one round trip, atomic across all the
windows and counters of a request. Plain Redis (not Cluster): a request's keys may live in any slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from pilothouse.gateway.limits.redis_lua import ACQUIRE, SEED, SETTLE
from pilothouse.gateway.limits.store import (
    CounterSettle,
    CounterSpec,
    CounterState,
    Refusal,
    WindowSettle,
    WindowSpec,
)


def _sum_key(key: str) -> str:
    return key + ":sum"


def _holds_key(key: str) -> str:
    return key + ":holds"


class RedisLimitStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._acquire = client.register_script(ACQUIRE)
        self._settle = client.register_script(SETTLE)
        self._seed = client.register_script(SEED)

    @classmethod
    def from_url(cls, url: str) -> RedisLimitStore:
        return cls(Redis.from_url(url))

    async def ping(self) -> None:
        await self.client.ping()

    async def acquire(
        self,
        reservation: str,
        windows: Sequence[WindowSpec],
        counters: Sequence[CounterSpec],
        *,
        hold_ms: int,
    ) -> Refusal | None:
        keys: list[str] = []
        args: list[Any] = [len(windows), len(counters), reservation, hold_ms]
        for w in windows:
            keys += [w.key, _sum_key(w.key)]
            args += [w.limit, w.amount, w.window_ms]
        for c in counters:
            keys += [c.key, _holds_key(c.key)]
            args += [-1 if c.limit is None else c.limit, c.amount, c.expire_at_ms or 0, c.idle_ttl_ms or 0]
        result = await self._acquire(keys=keys, args=args)
        if int(result[0]) == 0:
            return None
        kind, index, used, reserved, retry = result
        if int(kind) == 1:
            return Refusal("window", int(index), int(used), retry_after_ms=None if int(retry) < 0 else int(retry))
        return Refusal("counter", int(index), int(used), int(reserved))

    async def settle(
        self, reservation: str, windows: Sequence[WindowSettle], counters: Sequence[CounterSettle]
    ) -> list[int]:
        keys: list[str] = []
        args: list[Any] = [len(windows), len(counters), reservation]
        for w in windows:
            keys += [w.key, _sum_key(w.key)]
            args += [w.reserved, w.actual]
        for c in counters:
            keys += [c.key, _holds_key(c.key)]
            above = -1 if c.alert_above is None else c.alert_above
            args += [c.actual, above, c.expire_at_ms or 0, c.idle_ttl_ms or 0]
        result = await self._settle(keys=keys, args=args)
        return [int(i) for i in result]

    async def read(self, keys: Sequence[str]) -> list[CounterState]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, "spent", "reserved", "seeded")
            rows = await pipe.execute()
        return [
            CounterState(int(spent or 0), int(reserved or 0), seeded is not None) for spent, reserved, seeded in rows
        ]

    async def seed(self, key: str, amount: int, *, expire_at_ms: int | None = None, force: bool = False) -> bool:
        args = [amount, expire_at_ms or 0, 1 if force else 0]
        return int(await self._seed(keys=[key], args=args)) == 1

    async def aclose(self) -> None:
        await self.client.aclose()
