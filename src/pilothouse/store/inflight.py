"""Rows of the write-ahead ledger (table `inflight_calls`): budgeted calls between admission and their trace.

A row is written before the call goes upstream and holds what the call reserved in the LimitStore. It ends
in the transaction that stores the call's trace (`finish_calls`, run by the trace writer), or it becomes
`settle_pending` when the LimitStore could not take the call's settle (its actual amounts are kept and the
settle is retried), or a replica that finds it left behind by a dead one settles it at its reservation
(gateway/limits/ledger_recovery.py). Every function takes a connection inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from pilothouse.store.tables import inflight_calls

IN_FLIGHT = "in_flight"
SETTLE_PENDING = "settle_pending"
CounterKind = Literal["budget", "calls", "repeats", "tokens", "cost"]


@dataclass(frozen=True, slots=True)
class ReservedCounter:
    """One LimitStore counter a call reserved on: a budget (pico-dollars) or a run cap (kind)."""

    key: str
    amount: int
    kind: CounterKind
    alert_above: int | None = None
    """A soft budget's limit (pico-dollars): the settle reports crossing it."""
    expire_at_ms: int | None = None
    idle_ttl_ms: int | None = None

    def actual(self, tokens: int, cost_pico: int) -> int:
        """What the call used on this counter, given its actual tokens and cost."""
        if self.kind in ("budget", "cost"):
            return cost_pico
        if self.kind == "tokens":
            return tokens
        return 1  # calls, repeats: one call


@dataclass(frozen=True, slots=True)
class InflightCall:
    trace_id: str
    project_id: str
    reservation: str
    input_tokens: int
    """Reserved: the input bound and the output bound (0 when unknown) the admission used."""
    output_tokens: int
    cost_pico: int
    """Reserved: the call's worst-case cost."""
    process: str
    """The replica that made the call: host:pid:nonce (gateway/limits/ledger.py)."""
    created_at: float
    expires_at: float
    """When the LimitStore releases the reservation if nobody settles it."""
    windows: tuple[tuple[str, int], ...] = ()
    """Token windows (tpm) and the tokens reserved on each."""
    counters: tuple[ReservedCounter, ...] = ()
    api_key_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    model: str | None = None
    status: str = IN_FLIGHT
    actual_tokens: int | None = None
    actual_cost_pico: int | None = None
    attempts: int = 0
    retry_at: float | None = field(default=None, compare=False)

    @property
    def reserved_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def row(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "project_id": self.project_id,
            "api_key_id": self.api_key_id,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "prompt_name": self.prompt_name,
            "prompt_version": self.prompt_version,
            "model": self.model,
            "reservation": self.reservation,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_pico": self.cost_pico,
            "counters": {
                "windows": [list(w) for w in self.windows],
                "counters": [
                    [c.key, c.amount, c.kind, c.alert_above, c.expire_at_ms, c.idle_ttl_ms] for c in self.counters
                ],
            },
            "process": self.process,
            "status": self.status,
            "actual_tokens": self.actual_tokens,
            "actual_cost_pico": self.actual_cost_pico,
            "attempts": self.attempts,
            "retry_at": self.retry_at,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


def _call(row: Any) -> InflightCall:
    held = row.counters or {}
    return InflightCall(
        trace_id=row.trace_id,
        project_id=row.project_id,
        reservation=row.reservation,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_pico=int(row.cost_pico),
        process=row.process,
        created_at=row.created_at,
        expires_at=row.expires_at,
        windows=tuple((str(k), int(a)) for k, a in held.get("windows", [])),
        counters=tuple(ReservedCounter(str(c[0]), int(c[1]), c[2], c[3], c[4], c[5]) for c in held.get("counters", [])),
        api_key_id=row.api_key_id,
        user_id=row.user_id,
        session_id=row.session_id,
        prompt_name=row.prompt_name,
        prompt_version=row.prompt_version,
        model=row.model,
        status=row.status,
        actual_tokens=None if row.actual_tokens is None else int(row.actual_tokens),
        actual_cost_pico=None if row.actual_cost_pico is None else int(row.actual_cost_pico),
        attempts=row.attempts,
        retry_at=row.retry_at,
    )


def insert_calls(conn: Connection, calls: Sequence[InflightCall]) -> None:
    if calls:
        conn.execute(insert(inflight_calls), [c.row() for c in calls])


_FINISH_CALLS = delete(inflight_calls).where(
    inflight_calls.c.trace_id.in_(bindparam("trace_ids", expanding=True)), inflight_calls.c.status == IN_FLIGHT
)
"""Built once: the trace writer runs it for every batch; building a new statement each time was about 30%
of the writer's samples in a profile of the gateway without policies."""


def finish_calls(conn: Connection, trace_ids: Sequence[str]) -> None:
    """The calls' traces are being stored in this transaction: their `in_flight` rows end with it (a
    `settle_pending` row stays until its settle is taken)."""
    if trace_ids:
        conn.execute(_FINISH_CALLS, {"trace_ids": list(trace_ids)})


def mark_settle_pending(conn: Connection, trace_id: str, tokens: int, cost_pico: int, retry_at: float) -> bool:
    """Keep the call's actual amounts for a settle the LimitStore did not take; False when it has no row
    in flight any more."""
    result = conn.execute(
        update(inflight_calls)
        .where(inflight_calls.c.trace_id == trace_id, inflight_calls.c.status == IN_FLIGHT)
        .values(status=SETTLE_PENDING, actual_tokens=tokens, actual_cost_pico=cost_pico, retry_at=retry_at)
    )
    return bool(result.rowcount)


def list_calls(conn: Connection, *, status: str | None = None, limit: int = 10_000) -> list[InflightCall]:
    query = select(inflight_calls).order_by(inflight_calls.c.created_at).limit(limit)
    if status is not None:
        query = query.where(inflight_calls.c.status == status)
    return [_call(r) for r in conn.execute(query)]


def due_settles(conn: Connection, now: float, *, limit: int = 500) -> list[InflightCall]:
    query = (
        select(inflight_calls)
        .where(inflight_calls.c.status == SETTLE_PENDING, inflight_calls.c.retry_at <= now)
        .order_by(inflight_calls.c.retry_at)
        .limit(limit)
    )
    return [_call(r) for r in conn.execute(query)]


def claim_settle(conn: Connection, trace_id: str, now: float, next_try: float) -> bool:
    """Take a due settle for this process until `next_try` (when another may try it again). Exactly one of
    several replicas racing for it gets True."""
    result = conn.execute(
        update(inflight_calls)
        .where(
            inflight_calls.c.trace_id == trace_id,
            inflight_calls.c.status == SETTLE_PENDING,
            inflight_calls.c.retry_at <= now,
        )
        .values(retry_at=next_try, attempts=inflight_calls.c.attempts + 1)
    )
    return bool(result.rowcount)


def delete_call(conn: Connection, trace_id: str, *, status: str) -> bool:
    result = conn.execute(
        delete(inflight_calls).where(inflight_calls.c.trace_id == trace_id, inflight_calls.c.status == status)
    )
    return bool(result.rowcount)


def lock_in_flight(conn: Connection, trace_id: str) -> InflightCall | None:
    """The call's row while it is still `in_flight`, locked for this transaction; None when it ended or
    another transaction holds it (PostgreSQL: SKIP LOCKED; SQLite's write transactions run one at a time)."""
    query = select(inflight_calls).where(inflight_calls.c.trace_id == trace_id, inflight_calls.c.status == IN_FLIGHT)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    return None if row is None else _call(row)


def holds_on(calls: Iterable[InflightCall], key: str) -> list[tuple[InflightCall, int]]:
    """The calls in flight that reserved on counter `key`, with the amount each reserved (to restore a lost
    counter's reservations, or to bound reconciliation)."""
    return [(c, rc.amount) for c in calls if c.status == IN_FLIGHT for rc in c.counters if rc.key == key]
