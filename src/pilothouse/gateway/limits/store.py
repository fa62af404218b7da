"""The `LimitStore` protocol: the shared state behind rate limits, budgets and loop guards.

One small interface with two operations on two kinds of state, both atomic across every check of a request:

* **sliding windows** (rate limits): each entry is an amount (1 request, N tokens) at a time; a window
  admits an entry while the amounts of the last `window_ms` plus the new one stay within `limit`.
* **counters with reservations** (budgets, run caps): `spent` (settled) plus `reserved` (in flight). A
  counter admits a request while `spent + reserved < limit`, then reserves the request's worst case; the
  request settles with its actual amount. A reservation that is never settled (a crashed replica) is
  released after its hold time, so nothing leaks.

A budget's counter is money, so it is never born from traffic: `acquire` refuses to create a missing counter
marked `needs_seed` and reports it (`Refusal("unseeded")`); the caller counts what was spent from the store's
traces (and what is in flight), `seed`s it (once, however many replicas try: the counter's `seeded` marker
is set atomically with the amount) and acquires again. A counter is missing at the start of its period and
whenever the store lost it (Redis restarted without persistence, was flushed, or evicted the key); both look
the same to `acquire`, and both are answered the same way. Windows and run counters start from zero instead.

`acquire` checks every window and counter of one request and, only if all admit, adds to all of them (one
round trip on Redis); a second `acquire` with the same reservation id adds nothing (a retried call).
`settle` replaces the reserved amounts with the actual ones. Amounts are integers
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
    needs_seed: bool = False
    """A budget: refuse with `Refusal("unseeded")` while the counter was never seeded (see the module doc)."""


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

    kind: Literal["window", "counter", "unseeded"]
    index: int
    used: int
    """The window's current total, or the counter's settled `spent`."""
    reserved: int = 0
    """The counter's amount in flight (0 for windows)."""
    retry_after_ms: int | None = None
    """Windows: how long until the window admits this amount; None when it never will (amount > limit)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation in flight that a `seed` restores (from the store's write-ahead ledger), so its settle
    releases it as if the counter had never been lost."""

    reservation: str
    amount: int
    deadline_ms: int
    """Epoch ms after which it is released unsettled (its hold time)."""


SETTLED_MARKER_TTL_MS = 15 * 60 * 1000
"""How long a settled reservation is remembered, so a retried settle is not counted twice (the ledger retries
within minutes; reconciliation covers anything later)."""


class LimitStoreUnavailable(Exception):
    """The limit store cannot be reached (Redis refused the connection, timed out, went away). The message says
    which and where, in one line, for a 503 or a start-up error."""


@dataclass(frozen=True, slots=True)
class CounterState:
    spent: int
    reserved: int
    seeded: bool = field(default=False, compare=False)
    """True once `seed` ran on it, or a request reserved on it without `needs_seed` (a run)."""


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
        reservations are released `hold_ms` after this call. Idempotent: a reservation already added is
        admitted again without adding anything. Raises `LimitStoreUnavailable` when the store is down."""
        ...

    async def settle(
        self, reservation: str, windows: Sequence[WindowSettle], counters: Sequence[CounterSettle]
    ) -> list[int]:
        """Replace the reservation's amounts with the actual ones (windows whose entry has expired are left
        alone). Returns the indices of `counters` that crossed their `alert_above` for the first time.
        Idempotent for `SETTLED_MARKER_TTL_MS` after the first call: a retried settle whose first try was applied
        (its reply lost) adds nothing; after that, reconciliation corrects any double count."""
        ...

    async def read(self, keys: Sequence[str]) -> list[CounterState]:
        """Counters' current state (zeros for unknown keys)."""
        ...

    async def seed(
        self,
        key: str,
        amount: int,
        *,
        expire_at_ms: int | None = None,
        force: bool = False,
        holds: Sequence[Hold] = (),
    ) -> bool:
        """Add `amount` (spend recorded before the counter existed) to `spent`, and reserve `holds` (calls in
        flight), unless the counter is seeded already, i.e. was seeded or reserved on before; `force` adds
        `amount` anyway. True when it was added. A settle that reached the counter before its seed (a call
        that finished while the counter was missing) stays counted."""
        ...

    async def ping(self) -> None:
        """Raise `LimitStoreUnavailable` unless the store answers (start-up and /readyz)."""
        ...

    async def aclose(self) -> None: ...
