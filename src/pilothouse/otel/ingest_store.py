"""Storing ingested OTLP traces: idempotent, merging, and one project's data only ever its own.

An OTel trace may arrive in many requests (each service exports its own spans, and a batch span processor
sends whatever ended), and an exporter retries a request it is not sure arrived. So:

* a trace row is created by the first request that brings one of its spans, and later requests merge into it:
  its times, tokens and cost are recomputed from all its stored spans (as `TraceRecord.totals` counts them),
  its model, session and user filled in when unknown, and its status becomes `error` when a root span failed;
* a span already stored (same id) is skipped, so a retried request changes nothing;
* a trace id that already belongs to another project is refused (its spans are counted as rejected): a key of
  one project can never add to, or learn about, another's traces beyond that refusal.

Everything one request brings is written in one transaction. Content no store would take as sent (JSON nested
too deep, NUL characters, over-long text) is stored capped, as the trace sink does (tracing/repair.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Connection, Float, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from pilothouse.money import from_pico
from pilothouse.otel.ingest import Batch
from pilothouse.store.engine import Store
from pilothouse.store.rollups import add_traces as add_to_rollups
from pilothouse.store.search import index_traces
from pilothouse.store.tables import spans, traces
from pilothouse.store.types import Money
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.repair import describe_error, repair_rows, unfit_reason

log = logging.getLogger("pilothouse.otel")

SOURCE = "otlp"
"""`traces.source` of a trace first created by OTLP ingest."""


@dataclass(slots=True)
class Stored:
    """What happened to the spans of a batch."""

    stored: int = 0
    duplicates: int = 0
    """Spans already stored (a retried export): skipped, not an error."""
    refused: int = 0
    """Spans of trace ids that belong to another project, or that no store would take even capped."""


def _insert_ignoring_duplicates(dialect: str, table: Any) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def _rows(trace: TraceRecord, *, repaired: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    trace_row, span_rows = trace.row(), [s.row() for s in trace.spans]
    trace_row["source"] = SOURCE
    reason = repaired or unfit_reason(span_rows)
    if reason is not None:
        trace_row, span_rows = repair_rows(trace_row, span_rows, reason)
    return trace_row, span_rows


def _recompute(conn: Connection, merged: list[TraceRecord]) -> None:
    """Times and totals of `merged` traces from all their stored spans; model, session, user, status merged."""
    ids = [t.id for t in merged]
    counted = spans.c.kind.in_(("llm", "embedding"))
    totals = {
        row.trace_id: row
        for row in conn.execute(
            select(
                spans.c.trace_id,
                func.min(spans.c.started_at).label("started_at"),
                func.max(spans.c.ended_at).label("ended_at"),
                func.coalesce(func.sum(case((counted, spans.c.input_tokens), else_=0)), 0).label("tin"),
                func.coalesce(func.sum(case((counted, spans.c.output_tokens), else_=0)), 0).label("tout"),
                func.coalesce(func.sum(case((counted, spans.c.cost_usd), else_=0)), 0).label("cost"),
            )
            .where(spans.c.trace_id.in_(ids))
            .group_by(spans.c.trace_id)
        )
    }
    params = []
    for trace in merged:
        row = totals.get(trace.id)
        if row is None:
            continue
        spent = row.cost if isinstance(row.cost, Decimal) else from_pico(int(row.cost))
        params.append(
            {
                "b_id": trace.id,
                "b_started": row.started_at,
                "b_ended": row.ended_at,
                "b_tin": int(row.tin),
                "b_tout": int(row.tout),
                "b_cost": spent,
                "b_model": trace.model,
                "b_session": trace.session_id,
                "b_user": trace.user_id,
                "b_error": trace.status == "error",
            }
        )
    if not params:
        return
    started, ended = bindparam("b_started", type_=Float()), bindparam("b_ended", type_=Float())
    statement = (
        update(traces)
        .where(traces.c.id == bindparam("b_id"))
        .values(
            started_at=case((traces.c.started_at < started, traces.c.started_at), else_=started),
            ended_at=case(
                (ended.is_(None), traces.c.ended_at),
                (traces.c.ended_at > ended, traces.c.ended_at),
                else_=ended,
            ),
            input_tokens=bindparam("b_tin"),
            output_tokens=bindparam("b_tout"),
            cost_usd=bindparam("b_cost", type_=Money()),
            model=func.coalesce(traces.c.model, bindparam("b_model")),
            session_id=func.coalesce(traces.c.session_id, bindparam("b_session")),
            user_id=func.coalesce(traces.c.user_id, bindparam("b_user")),
            status=case((bindparam("b_error", type_=Boolean()), "error"), else_=traces.c.status),
        )
    )
    conn.execute(statement, params)


def _count_new(conn: Connection, trace_rows: list[dict[str, Any]], span_rows: list[dict[str, Any]]) -> None:
    """New traces into the rollups and the search index, as the trace sink does (spans merged into an existing
    trace are not added to either: see docs/opentelemetry.md)."""
    if trace_rows:
        created = {r["id"] for r in trace_rows}
        own = [s for s in span_rows if s["trace_id"] in created]
        add_to_rollups(conn, trace_rows, own)
        index_traces(conn, trace_rows, own)


def _write(conn: Connection, dialect: str, batch: list[TraceRecord], project_id: str, result: Stored) -> None:
    rows = [_rows(t) for t in batch]
    trace_rows = [r[0] for r in rows]
    created = set(
        conn.execute(_insert_ignoring_duplicates(dialect, traces).returning(traces.c.id), trace_rows).scalars()
    )
    existing = [t.id for t in batch if t.id not in created]
    foreign: set[str] = set()
    if existing:
        owners = conn.execute(select(traces.c.id, traces.c.project_id).where(traces.c.id.in_(existing))).all()
        foreign = {row.id for row in owners if row.project_id != project_id}
    span_rows = [s for (trace_row, span_list) in rows if trace_row["id"] not in foreign for s in span_list]
    result.refused += sum(len(t.spans) for t in batch if t.id in foreign)
    inserted: set[str] = set()
    if span_rows:
        inserted = set(
            conn.execute(_insert_ignoring_duplicates(dialect, spans).returning(spans.c.id), span_rows).scalars()
        )
    result.stored += len(inserted)
    result.duplicates += len(span_rows) - len(inserted)
    _count_new(conn, [r for r in trace_rows if r["id"] in created], [s for s in span_rows if s["id"] in inserted])
    merged = [
        t for t in batch if t.id not in foreign and (t.id not in created or any(s.id not in inserted for s in t.spans))
    ]
    if merged:
        _recompute(conn, merged)


def store_batch(store: Store, batch: Batch) -> Stored:
    """Write the traces of `batch` (see the module docstring); returns what happened to their spans."""
    result = Stored()
    if not batch.traces:
        return result
    project_id = batch.traces[0].project_id
    try:
        with store.begin() as conn:
            _write(conn, store.dialect, batch.traces, project_id, result)
        return result
    except Exception as exc:  # a row some store refuses: trace by trace, so it only affects itself
        if len(batch.traces) == 1:
            return _write_repaired(store, batch.traces, project_id, exc)
        log.warning("an OTLP batch could not be stored at once (%s); storing trace by trace", describe_error(exc))
    result = Stored()
    for trace in batch.traces:
        try:
            with store.begin() as conn:
                _write(conn, store.dialect, [trace], project_id, result)
        except Exception as exc:
            one = _write_repaired(store, [trace], project_id, exc)
            result.stored += one.stored
            result.duplicates += one.duplicates
            result.refused += one.refused
    return result


def _write_repaired(store: Store, batch: Iterable[TraceRecord], project_id: str, error: Exception) -> Stored:
    """One trace again with its content capped; refused (and logged) if even that fails."""
    result = Stored()
    traces_ = list(batch)
    reason = describe_error(error)
    try:
        with store.begin() as conn:
            for trace in traces_:
                trace_row, span_rows = _rows(trace, repaired=reason)
                _write_rows(conn, store.dialect, trace, trace_row, span_rows, project_id, result)
    except Exception as exc:
        log.error("OTLP trace could not be stored even capped (%s)", describe_error(exc))
        return Stored(refused=sum(len(t.spans) for t in traces_))
    return result


def _write_rows(
    conn: Connection,
    dialect: str,
    trace: TraceRecord,
    trace_row: dict[str, Any],
    span_rows: list[dict[str, Any]],
    project_id: str,
    result: Stored,
) -> None:
    created = conn.execute(_insert_ignoring_duplicates(dialect, traces).returning(traces.c.id), [trace_row]).first()
    if created is None:
        owner = conn.execute(select(traces.c.project_id).where(traces.c.id == trace.id)).scalar()
        if owner != project_id:
            result.refused += len(span_rows)
            return
    inserted = set(conn.execute(_insert_ignoring_duplicates(dialect, spans).returning(spans.c.id), span_rows).scalars())
    result.stored += len(inserted)
    result.duplicates += len(span_rows) - len(inserted)
    if created is not None:
        _count_new(conn, [trace_row], [s for s in span_rows if s["id"] in inserted])
    _recompute(conn, [trace])
