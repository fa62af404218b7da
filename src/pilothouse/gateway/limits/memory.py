"""`MemoryLimitStore`: the limit state of one process (no Redis configured).

Same semantics as the Redis backend; one lock makes each operation atomic (it is also used from threads).
Expired windows entries, counters and reservations are dropped as they are touched, and a periodic sweep
drops keys nobody touches any more (finished runs), so memory stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pilothouse.gateway.limits.store import (
    SETTLED_MARKER_TTL_MS,
    CounterSettle,
    CounterSpec,
    CounterState,
    Hold,
    Refusal,
    WindowSettle,
    WindowSpec,
)

_SWEEP_EVERY_MS = 60_000


@dataclass(slots=True)
class _Window:
    entries: deque[list[Any]] = field(default_factory=deque)  # [time ms, reservation, amount], oldest first
    by_reservation: dict[str, list[Any]] = field(default_factory=dict)
    total: int = 0
    window_ms: int = 0

    def trim(self, now: int) -> None:
        cutoff = now - self.window_ms
        while self.entries and self.entries[0][0] <= cutoff:
            _, rid, amount = self.entries.popleft()
            self.by_reservation.pop(rid, None)
            self.total -= amount

    def add(self, now: int, reservation: str, amount: int) -> None:
        entry = [now, reservation, amount]
        self.entries.append(entry)
        self.by_reservation[reservation] = entry
        self.total += amount

    def retry_after(self, now: int, amount: int, limit: int) -> int | None:
        if amount > limit:
            return None
        need = self.total + amount - limit
        freed = 0
        for at, _, entry in self.entries:
            freed += entry
            if freed >= need:
                return int(at) + self.window_ms - now
        return self.window_ms


@dataclass(slots=True)
class _Counter:
    spent: int = 0
    reserved: int = 0
    holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # reservation -> (amount, deadline ms)
    expire_at_ms: int | None = None
    idle_ttl_ms: int | None = None
    touched_ms: int = 0
    seeded: bool = False
    alerted: bool = False
    settled_unseeded: set[str] = field(default_factory=set)  # settles before the seed: holds not to restore

    def expired(self, now: int) -> bool:
        if self.expire_at_ms is not None and now >= self.expire_at_ms:
            return True
        return self.idle_ttl_ms is not None and now >= self.touched_ms + self.idle_ttl_ms

    def sweep(self, now: int) -> None:
        for rid in [r for r, (_, deadline) in self.holds.items() if deadline <= now]:
            self.reserved -= self.holds.pop(rid)[0]

    def touch(self, now: int, expire_at_ms: int | None, idle_ttl_ms: int | None) -> None:
        self.touched_ms = now
        if expire_at_ms is not None:
            self.expire_at_ms = expire_at_ms
        if idle_ttl_ms is not None:
            self.idle_ttl_ms = idle_ttl_ms


def _now_ms() -> int:
    return int(time.time() * 1000)


class MemoryLimitStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._counters: dict[str, _Counter] = {}
        self._next_sweep = _now_ms() + _SWEEP_EVERY_MS
        self._settled: dict[str, int] = {}  # reservation -> until (ms): a second settle of it adds nothing

    def _counter(self, key: str, now: int) -> _Counter:
        counter = self._counters.get(key)
        if counter is None or counter.expired(now):
            counter = self._counters[key] = _Counter(touched_ms=now)
        return counter

    def _window(self, key: str, window_ms: int, now: int) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(window_ms=window_ms)
        window.window_ms = window_ms
        window.trim(now)
        return window

    def _maybe_sweep(self, now: int) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_MS
        for key in [k for k, c in self._counters.items() if c.expired(now)]:
            del self._counters[key]
        for rid in [r for r, until in self._settled.items() if until <= now]:
            del self._settled[rid]
        for key, window in list(self._windows.items()):
            window.trim(now)
            if not window.entries:
                del self._windows[key]

    async def acquire(
        self,
        reservation: str,
        windows: Sequence[WindowSpec],
        counters: Sequence[CounterSpec],
        *,
        hold_ms: int,
    ) -> Refusal | None:
        with self._lock:
            now = _now_ms()
            self._maybe_sweep(now)
            opened = [self._window(w.key, w.window_ms, now) for w in windows]
            if self._acquired(reservation, opened, counters, now):
                return None  # a retried call: added already
            for i, (spec, window) in enumerate(zip(windows, opened, strict=True)):
                if window.total + spec.amount > spec.limit:
                    retry = window.retry_after(now, spec.amount, spec.limit)
                    return Refusal("window", i, window.total, retry_after_ms=retry)
            held = [self._counter(c.key, now) for c in counters]
            for i, (cspec, counter) in enumerate(zip(counters, held, strict=True)):
                counter.sweep(now)
                if cspec.needs_seed and not counter.seeded:
                    return Refusal("unseeded", i, counter.spent, counter.reserved)
                if cspec.limit is not None and counter.spent + counter.reserved >= cspec.limit:
                    return Refusal("counter", i, counter.spent, counter.reserved)
            for spec, window in zip(windows, opened, strict=True):
                window.add(now, reservation, spec.amount)
            for cspec, counter in zip(counters, held, strict=True):
                counter.reserved += cspec.amount
                counter.seeded = True
                counter.holds[reservation] = (cspec.amount, now + hold_ms)
                counter.touch(now, cspec.expire_at_ms, cspec.idle_ttl_ms)
            return None

    def _acquired(self, reservation: str, windows: list[_Window], counters: Sequence[CounterSpec], now: int) -> bool:
        if windows:
            return reservation in windows[0].by_reservation
        if counters:
            counter = self._counters.get(counters[0].key)
            return counter is not None and not counter.expired(now) and reservation in counter.holds
        return False

    async def settle(
        self, reservation: str, windows: Sequence[WindowSettle], counters: Sequence[CounterSettle]
    ) -> list[int]:
        alerted: list[int] = []
        with self._lock:
            now = _now_ms()
            for w in windows:
                window = self._windows.get(w.key)
                if window is None or w.reserved == w.actual:
                    continue
                window.trim(now)
                entry = window.by_reservation.get(reservation)
                if entry is not None and entry[2] == w.reserved:
                    entry[2] = w.actual
                    window.total += w.actual - w.reserved
            if counters:
                if self._settled.get(reservation, 0) > now:
                    return alerted
                self._settled[reservation] = now + SETTLED_MARKER_TTL_MS
            for i, c in enumerate(counters):
                counter = self._counter(c.key, now)
                hold = counter.holds.pop(reservation, None)
                if hold is not None:
                    counter.reserved -= hold[0]
                if not counter.seeded:
                    counter.settled_unseeded.add(reservation)
                counter.spent += c.actual
                counter.touch(now, c.expire_at_ms, c.idle_ttl_ms)
                if c.alert_above is not None and counter.spent > c.alert_above and not counter.alerted:
                    counter.alerted = True
                    alerted.append(i)
        return alerted

    async def read(self, keys: Sequence[str]) -> list[CounterState]:
        with self._lock:
            now = _now_ms()
            states = []
            for key in keys:
                counter = self._counters.get(key)
                if counter is None or counter.expired(now):
                    states.append(CounterState(0, 0))
                    continue
                counter.sweep(now)
                states.append(CounterState(counter.spent, counter.reserved, counter.seeded))
            return states

    async def seed(
        self,
        key: str,
        amount: int,
        *,
        expire_at_ms: int | None = None,
        force: bool = False,
        holds: Sequence[Hold] = (),
    ) -> bool:
        with self._lock:
            now = _now_ms()
            counter = self._counter(key, now)
            if counter.seeded and not force:
                return False
            if not counter.seeded:
                for hold in holds:
                    if hold.reservation not in counter.holds and hold.reservation not in counter.settled_unseeded:
                        counter.holds[hold.reservation] = (hold.amount, hold.deadline_ms)
                        counter.reserved += hold.amount
                counter.settled_unseeded.clear()
            counter.seeded = True
            counter.spent += amount
            counter.touch(now, expire_at_ms, None)
            return True

    async def ping(self) -> None:
        return None  # in this process: always there

    async def aclose(self) -> None:
        return None
