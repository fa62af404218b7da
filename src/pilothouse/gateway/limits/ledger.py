"""The write-ahead ledger: no budgeted call goes upstream without a durable record of what it reserved.

`open` writes the record after admission and before the call (group-committed, ledger_writer.py); the trace
writer deletes it in the transaction that stores the call's trace (store/inflight.py `finish_calls`). A
settle the LimitStore does not take (Redis cut) keeps the record as `settle_pending` with the actual amounts,
retried with backoff until it is taken. A background task of every replica retries those settles, recovers
calls that a dead replica left in flight (ledger_recovery.py), and reconciles Redis with the traces
(ledger_reconcile.py). Requests that no budget or run cap applies to write no record (rate-limit windows age
out by themselves, holding the worst case meanwhile). See docs/cost-control.md#the-spend-guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from pilothouse.config import Settings
from pilothouse.gateway.limits.ledger_reconcile import Drift, reconcile
from pilothouse.gateway.limits.ledger_recovery import recover_call, recoverable, settle_of
from pilothouse.gateway.limits.ledger_writer import LedgerWriter
from pilothouse.gateway.limits.store import LimitStore
from pilothouse.store import inflight
from pilothouse.store.budgets import Budget
from pilothouse.store.engine import Store
from pilothouse.store.inflight import InflightCall, ReservedCounter
from pilothouse.tracing.model import TraceRecord

log = logging.getLogger("pilothouse.ledger")

RETRY_MAX_S = 60.0
T = TypeVar("T")


def process_id() -> str:
    """host:pid:nonce. The nonce tells a restarted process from an old one that had the same pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def call_deadline_s(settings: Settings) -> float:
    """The longest a call may run (routing.call_deadline_s, or a model's own, whichever is longest)."""
    own = [m.call_deadline_s for m in settings.models if m.call_deadline_s is not None]
    return max([settings.routing.call_deadline_s, *own])


class Ledger:
    def __init__(self, settings: Settings, store: Store, limits: LimitStore, *, process: str | None = None) -> None:
        self.settings = settings.limits
        self.store = store
        self.limits = limits
        self.process = process or process_id()
        self.deadline_s = call_deadline_s(settings)
        self.writer = LedgerWriter(store)
        self.last_drift: list[Drift] = []
        self._unrecorded: dict[str, InflightCall] = {}  # settles the store could not keep either: retried here
        self._task: asyncio.Task[None] | None = None

    # -- the hot path -------------------------------------------------------------------------------------
    async def open(
        self,
        trace: TraceRecord,
        reservation: str,
        reserved: tuple[int, int, int],
        windows: Sequence[tuple[str, int]],
        counters: Sequence[ReservedCounter],
    ) -> InflightCall:
        """Write the call's record (committed when this returns). `reserved`: input tokens, output tokens,
        cost in pico-dollars."""
        now = time.time()
        call = InflightCall(
            trace_id=trace.ledger_id or trace.id,
            project_id=trace.project_id,
            reservation=reservation,
            input_tokens=reserved[0],
            output_tokens=reserved[1],
            cost_pico=reserved[2],
            process=self.process,
            created_at=now,
            expires_at=now + self.settings.reservation_ttl_s,
            windows=tuple(windows),
            counters=tuple(counters),
            api_key_id=trace.api_key_id,
            user_id=trace.user_id,
            session_id=trace.session_id,
            prompt_name=trace.prompt_name,
            prompt_version=trace.prompt_version,
            model=trace.model,
        )
        await self.writer.submit(call)
        return call

    async def settle_later(self, call: InflightCall, tokens: int, cost_pico: int) -> None:
        """The LimitStore did not take this call's settle: keep it (durably, before the trace is stored) and
        retry it; in memory if the store cannot keep it either."""
        retry_at = time.time() + self.settings.settle_retry_s
        try:
            kept = await self.writer.submit(
                lambda conn: inflight.mark_settle_pending(conn, call.trace_id, tokens, cost_pico, retry_at)
            )
        except Exception as exc:
            log.error("could not keep the settle of trace %s for a retry (%s); retried from memory", call.trace_id, exc)
            pending = replace(call, status=inflight.SETTLE_PENDING, actual_tokens=tokens, actual_cost_pico=cost_pico)
            self._unrecorded[call.trace_id] = pending
            return
        if not kept:  # another replica took it for a dead one's and charged its reservation: nothing more
            log.warning("trace %s was recovered at its reservation meanwhile; its settle is not retried", call.trace_id)

    # -- background work ----------------------------------------------------------------------------------
    async def retry_settles(self, now: float | None = None) -> int:
        """Settle every due `settle_pending` record (any replica's) the LimitStore now takes; returns how many."""
        now = time.time() if now is None else now
        done = 0
        for trace_id, call in list(self._unrecorded.items()):
            if await self._settle(call):
                self._unrecorded.pop(trace_id, None)
                done += 1
        due = await asyncio.to_thread(self._read, lambda conn: inflight.due_settles(conn, now))
        for call in due:
            wait = min(self.settings.settle_retry_s * 2 ** min(call.attempts, 16), RETRY_MAX_S)
            claimed = await self.writer.submit(
                partial(inflight.claim_settle, trace_id=call.trace_id, now=now, next_try=now + wait)
            )
            if not claimed or not await self._settle(call):
                continue
            await self.writer.submit(
                partial(inflight.delete_call, trace_id=call.trace_id, status=inflight.SETTLE_PENDING)
            )
            done += 1
        return done

    async def recover(self, now: float | None = None) -> int:
        """Record the calls dead replicas left in flight as `unknown_outcome` traces at their reservation, and
        settle them; returns how many this process recovered."""
        now = time.time() if now is None else now
        calls = await asyncio.to_thread(self._read, lambda conn: inflight.list_calls(conn, status=inflight.IN_FLIGHT))
        recovered = 0
        for call in calls:
            if not recoverable(call, now, self.process, self.deadline_s):
                continue
            outcome = await asyncio.to_thread(recover_call, self.store, call.trace_id, now)
            if outcome == "recovered":
                recovered += 1
                log.warning(
                    "trace %s: replica %s stopped during the call; recorded as unknown_outcome and charged its "
                    "reservation (%d tokens, %d pico-USD)",
                    call.trace_id,
                    call.process,
                    call.reserved_tokens,
                    call.cost_pico,
                )
        if recovered:
            await self.retry_settles(now)
        return recovered

    async def reconcile(self, budgets: list[Budget], *, fix: bool = True) -> list[Drift]:
        self.last_drift = await reconcile(
            self.store, self.limits, self.settings.redis_prefix, budgets, time.time(), fix=fix
        )
        return self.last_drift

    def _read(self, read: Callable[[Any], T]) -> T:
        with self.store.connect() as conn:
            return read(conn)

    async def _settle(self, call: InflightCall) -> bool:
        windows, counters = settle_of(call)
        try:
            crossed = await self.limits.settle(call.reservation, windows, counters)
        except Exception as exc:
            log.warning("settle of trace %s still not taken (%s); retrying later", call.trace_id, exc)
            return False
        for index in crossed:
            log.warning(
                "soft budget exceeded (counter %s); the call that crossed it: trace %s",
                counters[index].key,
                call.trace_id,
            )
        return True

    # -- life cycle -----------------------------------------------------------------------------------------
    async def start(self, budgets: Callable[[], list[Budget]]) -> None:
        """Recover what dead replicas left and retry pending settles now, then keep doing it (and reconcile)
        in the background. `budgets`: the budgets defined now."""
        await self._step(self.recover)
        await self._step(self.retry_settles)
        self._task = asyncio.create_task(self._run(budgets), name="pilothouse-ledger")

    async def _step(self, work: Callable[[], Awaitable[object]]) -> None:
        try:
            await work()
        except Exception:
            log.exception("write-ahead ledger: %s failed; tried again later", getattr(work, "__name__", work))

    async def _run(self, budgets: Callable[[], list[Budget]]) -> None:
        tick = min(self.settings.settle_retry_s, 1.0)
        now = time.monotonic()
        next_recovery = now + self.settings.recovery_interval_s
        next_reconcile = now + self.settings.reconcile_interval_s
        while True:
            await asyncio.sleep(tick)
            await self._step(self.retry_settles)
            now = time.monotonic()
            if self.settings.recovery_interval_s and now >= next_recovery:
                next_recovery = now + self.settings.recovery_interval_s
                await self._step(self.recover)
            if self.settings.reconcile_interval_s and now >= next_reconcile:
                next_reconcile = now + self.settings.reconcile_interval_s
                await self._step(lambda: self.reconcile(budgets()))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.retry_settles()  # a last try before the process ends; the records stay otherwise
        await asyncio.to_thread(self.writer.close)
