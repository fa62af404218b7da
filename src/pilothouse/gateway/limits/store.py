"""The `LimitStore` protocol: the shared state behind rate limits, budgets and loop guards.

One small interface with two operations on two kinds of state, both atomic across every check of a request:

* **sliding windows** (rate limits): each entry is an amount (1 request, N tokens) at a time; a window
  admits an entry while the amounts of the last `window_ms` plus the new one stay within `limit`.
* **counters with reservations** (budgets, run caps): `spent` (settled) plus `reserved` (in flight). A
  counter admits a request while `spent + reserved < limit`, then reserves the request's worst case; the
  request settles with its actual amount. A reservation that is never settled (a crashed replica) is
  released after its hold time, so nothing leaks.

`acquire` checks every window and counter of one request and, only if all admit, adds to all of them (one
round trip on Redis). `settle` replaces the reserved amounts with the actual ones. Amounts are integers
(requests, tokens, pico-dollars), so no rounding drifts between replicas.

Backends: `MemoryLimitStore` (one process) and `RedisLimitStore` (replicas). Both pass the conformance suite
in tests/gateway/limits/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Add `amount` to the sliding window `key` if the last `window_ms` plus it stay within `limit`."""

    key: str
    limit: int
    amount: int
    window_ms: int


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """Reserve `amount` on counter `key` if `spent + reserved < limit` (None: no limit, tracked only).

    Expiry of the whole counter: at `expire_at_ms` (epoch ms; a budget period's end), or `idle_ttl_ms` after
    its last use (a run), or never when both are None.
    """

    key: str
    limit: int | None
    amount: int
    expire_at_ms: int | None = None
    idle_ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class WindowSettle:
    """Replace the `reserved` amount a request added to window `key` with `actual`."""

    key: str
    reserved: int
    actual: int


@dataclass(frozen=True, slots=True)
class CounterSettle:
    """Release the request's reservation on `key` and add `actual` to `spent`.

    `alert_above`: report this counter if `spent` is above it after the settle and it was not reported
    before (once per counter: a soft budget alerts once per period)."""

    key: str
    actual: int
    alert_above: int | None = None
    expire_at_ms: int | None = None
    idle_ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why `acquire` admitted nothing: the first window or counter (by index in its list) that refused."""

    kind: Literal["window", "counter"]
    index: int
    used: int
    """The window's current total, or the counter's settled `spent`."""
    reserved: int = 0
    """The counter's amount in flight (0 for windows)."""
    retry_after_ms: int | None = None
    """Windows: how long until the window admits this amount; None when it never will (amount > limit)."""


@dataclass(frozen=True, slots=True)
class CounterState:
    spent: int
    reserved: int
    seeded: bool = field(default=False, compare=False)
    """True once `seed` ran on it or a request reserved on it (its past spend needs no recount)."""


class LimitStore(Protocol):
    """Shared limit state. All methods are safe to call concurrently, from any number of replicas."""

    async def acquire(
        self,
        reservation: str,
        windows: Sequence[WindowSpec],
        counters: Sequence[CounterSpec],
        *,
        hold_ms: int,
    ) -> Refusal | None:
        """All or nothing: None when every window and counter admitted and the amounts were added under the
        id `reservation` (unique per request), else the first refusal and nothing added. Unsettled
        reservations are released `hold_ms` after this call."""
        ...

    async def settle(
        self, reservation: str, windows: Sequence[WindowSettle], counters: Sequence[CounterSettle]
    ) -> list[int]:
        """Replace the reservation's amounts with the actual ones (windows whose entry has expired are left
        alone). Returns the indices of `counters` that crossed their `alert_above` for the first time."""
        ...

    async def read(self, keys: Sequence[str]) -> list[CounterState]:
        """Counters' current state (zeros for unknown keys)."""
        ...

    async def seed(self, key: str, amount: int, *, expire_at_ms: int | None = None, force: bool = False) -> bool:
        """Add `amount` (spend recorded before the counter existed) to `spent` unless the counter is seeded
        already, i.e. was seeded or reserved on before; `force` adds it anyway. True when it was added."""
        ...

    async def aclose(self) -> None: ...
