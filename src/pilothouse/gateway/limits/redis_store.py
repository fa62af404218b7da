"""`RedisLimitStore`: limit state shared by every replica through Redis (PILOTHOUSE_REDIS_URL).

Each operation is one Lua script (redis_lua.py), run by EVALSHA: one round trip, atomic across all the
windows and counters of a request. Plain Redis (not Cluster): a request's keys may live in any slot.

A Redis that is down must not hold requests up: connecting gives up after 1 s and a reply after 2 s, with one
immediate retry (a pooled connection that a restarted Redis closed reconnects); ACQUIRE is idempotent, so
the retry cannot reserve twice. Failures surface as `LimitStoreUnavailable`, naming the URL (password hidden).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pilothouse.gateway.limits.redis_lua import ACQUIRE, SEED, SETTLE
from pilothouse.gateway.limits.store import (
    SETTLED_MARKER_TTL_MS,
    CounterSettle,
    CounterSpec,
    CounterState,
    Hold,
    LimitStoreUnavailable,
    Refusal,
    WindowSettle,
    WindowSpec,
)

CONNECT_TIMEOUT_S = 1.0
REPLY_TIMEOUT_S = 2.0
T = TypeVar("T")


def _sum_key(key: str) -> str:
    return key + ":sum"


def _holds_key(key: str) -> str:
    return key + ":holds"


def safe_url(url: str) -> str:
    """The URL without its password (`redis://:***@host:6379/0`), for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(exc: BaseException) -> str:
    """`Connection refused` rather than redis-py's `Error 111 connecting to 127.0.0.1:6390. Connect call
    failed ('127.0.0.1', 6390).`"""
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timed out"
    for err in (exc, exc.__cause__, exc.__context__):
        if isinstance(err, OSError) and err.errno:  # a resolver error has a negative errno and its own text
            return os.strerror(err.errno) if err.errno > 0 else str(err.strerror)
    return str(exc).strip() or type(exc).__name__


class RedisLimitStore:
    def __init__(self, client: Redis, url: str = "redis") -> None:
        self.client = client
        self.url = safe_url(url)
        self._acquire = client.register_script(ACQUIRE)
        self._settle = client.register_script(SETTLE)
        self._seed = client.register_script(SEED)

    @classmethod
    def from_url(cls, url: str) -> RedisLimitStore:
        client = Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(client, url)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except ResponseError as exc:  # OOM, READONLY, MISCONF...: Redis answers but will not do it
            raise LimitStoreUnavailable(f"Redis at {self.url} refused the limit update ({exc})") from exc
        except (RedisError, OSError) as exc:
            raise LimitStoreUnavailable(f"cannot reach Redis at {self.url} ({_reason(exc)})") from exc

    async def ping(self) -> None:
        await self._call(self.client.ping())

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
            limit = -1 if c.limit is None else c.limit
            args += [limit, c.amount, c.expire_at_ms or 0, c.idle_ttl_ms or 0, 1 if c.needs_seed else 0]
        result = await self._call(self._acquire(keys=keys, args=args))
        if int(result[0]) == 0:
            return None
        kind, index, used, reserved, retry = result
        if int(kind) == 1:
            return Refusal("window", int(index), int(used), retry_after_ms=None if int(retry) < 0 else int(retry))
        return Refusal("counter" if int(kind) == 2 else "unseeded", int(index), int(used), int(reserved))

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
        if counters:  # windows settle idempotently by themselves; counters through the settled marker
            keys.append(f"{counters[0].key}|settled|{reservation}")
            args.append(SETTLED_MARKER_TTL_MS)
        result = await self._call(self._settle(keys=keys, args=args))
        return [int(i) for i in result]

    async def read(self, keys: Sequence[str]) -> list[CounterState]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, "spent", "reserved", "seeded")
            rows = await self._call(pipe.execute())
        return [
            CounterState(int(spent or 0), int(reserved or 0), seeded is not None) for spent, reserved, seeded in rows
        ]

    async def seed(
        self,
        key: str,
        amount: int,
        *,
        expire_at_ms: int | None = None,
        force: bool = False,
        holds: Sequence[Hold] = (),
    ) -> bool:
        args: list[Any] = [amount, expire_at_ms or 0, 1 if force else 0]
        for hold in holds:
            args += [hold.reservation, hold.amount, hold.deadline_ms]
        return int(await self._call(self._seed(keys=[key, _holds_key(key)], args=args))) == 1

    async def aclose(self) -> None:
        await self.client.aclose()
