"""Calls a dead replica left in flight: settled at their reservation, recorded as `unknown_outcome` traces.

Nobody knows what such a call cost (the upstream may have answered and billed it), so it is charged its full
reservation, the most it could have cost, and never released as if unspent. A call is recovered when its
replica is gone (same host, its process no longer exists) or, for a replica this one cannot check, once its
reservation has expired and it is older than the call deadline. Recovery turns the record into a trace and a
`settle_pending` record in one transaction, under a row lock (PostgreSQL: SKIP LOCKED; SQLite: one writer
at a time), so two replicas racing for it record it once; the settle then goes through the durable retry.
A call whose trace is already stored is not charged again: its record is dropped.
"""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from typing import Literal

from sqlalchemy import Connection, insert, select

from pilothouse.gateway.limits.store import CounterSettle, WindowSettle
from pilothouse.money import from_pico
from pilothouse.store import inflight
from pilothouse.store.engine import Store
from pilothouse.store.inflight import InflightCall
from pilothouse.store.tables import spans, traces
from pilothouse.tracing.model import TraceRecord

Outcome = Literal["recovered", "stored", "taken"]


def process_gone(process: str) -> bool:
    """True only when `process` (host:pid:nonce) ran on this host and that pid no longer exists."""
    host, _, rest = process.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, another user's
        return False
    return False


def recoverable(call: InflightCall, now: float, me: str, deadline_s: float) -> bool:
    if call.status != inflight.IN_FLIGHT or call.process == me:
        return False  # this process settles its own calls
    if process_gone(call.process):
        return True
    return now >= max(call.expires_at, call.created_at + deadline_s)


def unknown_outcome_trace(call: InflightCall, now: float) -> TraceRecord:
    """The trace of a call whose outcome nobody saw: its reservation as tokens and cost."""
    trace = TraceRecord(
        project_id=call.project_id,
        name="chat",
        id=call.trace_id,
        api_key_id=call.api_key_id,
        session_id=call.session_id,
        user_id=call.user_id,
        status="unknown_outcome",
        started_at=call.created_at,
        ended_at=now,
        model=call.model,
        prompt_name=call.prompt_name,
        prompt_version=call.prompt_version,
    )
    span = trace.span("llm", "chat")
    span.started_at = call.created_at
    span.model = call.model
    span.input_tokens = call.input_tokens
    span.output_tokens = call.output_tokens
    span.usage_estimated = True
    span.cost_usd = from_pico(call.cost_pico) if call.cost_pico else Decimal(0)
    span.attributes = {
        "pilothouse.ledger.outcome": "unknown",
        "pilothouse.ledger.process": call.process,
        "pilothouse.ledger.reservation": call.reservation,
    }
    span.finish(
        status="error",
        error=f"the replica making this call ({call.process}) stopped before it ended; charged at its reservation",
    )
    span.ended_at = now
    return trace


def _trace_stored(conn: Connection, trace_id: str) -> bool:
    return conn.execute(select(traces.c.id).where(traces.c.id == trace_id)).first() is not None


def recover_call(store: Store, trace_id: str, now: float) -> Outcome:
    """Record one abandoned call (see the module doc). `taken`: another replica has it, or it ended."""
    with store.begin() as conn:
        call = inflight.lock_in_flight(conn, trace_id)
        if call is None:
            return "taken"
        if _trace_stored(conn, trace_id):
            inflight.delete_call(conn, trace_id, status=inflight.IN_FLIGHT)
            return "stored"
        trace = unknown_outcome_trace(call, now)
        conn.execute(insert(traces), [trace.row()])
        conn.execute(insert(spans), [s.row() for s in trace.spans])
        inflight.mark_settle_pending(conn, trace_id, call.reserved_tokens, call.cost_pico, retry_at=now)
    return "recovered"


def settle_of(call: InflightCall) -> tuple[list[WindowSettle], list[CounterSettle]]:
    """The LimitStore settle of a `settle_pending` record: its actual amounts replace its reservations."""
    tokens = call.actual_tokens if call.actual_tokens is not None else call.reserved_tokens
    cost = call.actual_cost_pico if call.actual_cost_pico is not None else call.cost_pico
    windows = [WindowSettle(key, reserved, tokens) for key, reserved in call.windows if reserved != tokens]
    counters = [
        CounterSettle(
            c.key,
            c.actual(tokens, cost),
            alert_above=c.alert_above,
            expire_at_ms=c.expire_at_ms,
            idle_ttl_ms=c.idle_ttl_ms,
        )
        for c in call.counters
    ]
    return windows, counters
