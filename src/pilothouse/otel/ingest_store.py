"""Storing ingested OTLP traces: idempotent, merging, and one project's data only ever its own.

An OTel trace may arrive in many requests (each service exports its own spans, and a batch span processor
sends whatever ended), and an exporter retries a request it is not sure arrived. Every part goes through the
trace writers' one write path (tracing/merge.py `store_parts`), as SDK batches and gateway calls do:

* a trace row is created by the first request that brings one of its spans, and later requests merge into it
  (times widened, tokens and cost added, model filled in when unknown, status `error` once a root span failed),
  and are counted in the rollups and added to the full-text index;
* a span already stored (same id, same trace) is skipped and its totals are not counted twice, so a retried
  request changes nothing;
* a trace id that already belongs to another project is refused (its spans are counted as rejected): a key of
  one project can never add to, or learn about, another's traces beyond that refusal.

Everything one request brings is written in one transaction, and the answer is sent only after it commits.
Content no store would take as sent (JSON nested too deep, NUL characters, over-long text) is stored capped,
as the trace sink does (tracing/repair.py); a batch the store refuses is stored trace by trace, so one bad
trace only affects itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pilothouse.otel.ingest import Batch
from pilothouse.store.engine import Store
from pilothouse.tracing import span_table
from pilothouse.tracing.merge import store_parts
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.repair import describe_error, repair_rows
from pilothouse.tracing.sink import transient

log = logging.getLogger("pilothouse.otel")

SOURCE = "otlp"
"""`traces.source` of a trace first created by OTLP ingest."""


class StoreUnavailable(Exception):
    """The database cannot be reached: nothing of the request was stored (the sender should retry)."""


@dataclass(slots=True)
class Stored:
    """What happened to the spans of a batch."""

    stored: int = 0
    duplicates: int = 0
    """Spans already stored (a retried export): skipped, not an error."""
    refused: int = 0
    """Spans of trace ids that belong to another project, or that no store would take even capped."""

    def add(self, other: Stored) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.refused += other.refused


@dataclass(slots=True)
class _Rows:
    traces: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    values: list[tuple[Any, ...]]


def _rows(batch: list[TraceRecord], *, repaired: str | None = None) -> _Rows:
    """The rows of `batch`, spans encoded for the table; a trace no store would take as is comes capped."""
    rows = _Rows([], [], [])
    for trace in batch:
        trace_row, span_rows = trace.row(), [s.row() for s in trace.spans]
        trace_row["source"] = SOURCE
        if repaired is not None:
            trace_row, span_rows = repair_rows(trace_row, span_rows, repaired)
        try:
            values = span_table.encode_all(span_rows)
        except span_table.Unfit as exc:
            trace_row, span_rows = repair_rows(trace_row, span_rows, str(exc))
            values = span_table.encode_all(span_rows)
        rows.traces.append(trace_row)
        rows.spans += span_rows
        rows.values += values
    return rows


def _write(store: Store, batch: list[TraceRecord], *, repaired: str | None = None) -> Stored:
    """One transaction for `batch`; what happened to its spans."""
    rows = _rows(batch, repaired=repaired)
    with store.begin() as conn:
        written = store_parts(conn, rows.traces, rows.spans, values=rows.values)
    kept = {row["id"] for row in written.traces}
    offered = sum(len(t.spans) for t in batch if t.id in kept)
    return Stored(
        stored=len(written.spans),
        duplicates=offered - len(written.spans),
        refused=sum(len(t.spans) for t in batch if t.id not in kept),
    )


def store_batch(store: Store, batch: Batch) -> Stored:
    """Write the traces of `batch` (see the module docstring); returns what happened to their spans."""
    if not batch.traces:
        return Stored()
    try:
        return _write(store, batch.traces)
    except Exception as exc:  # a row some store refuses: trace by trace, so it only affects itself
        raise_if_unavailable(store, exc)
        if len(batch.traces) == 1:
            return _write_repaired(store, batch.traces[0], exc)
        log.warning("an OTLP batch could not be stored at once (%s); storing trace by trace", describe_error(exc))
    result = Stored()
    for trace in batch.traces:
        try:
            result.add(_write(store, [trace]))
        except Exception as exc:
            raise_if_unavailable(store, exc)
            result.add(_write_repaired(store, trace, exc))
    return result


def raise_if_unavailable(store: Store, error: Exception) -> None:
    """A database outage is not a bad trace: the request fails (retryable) instead of rejecting its spans.
    Traces of the batch stored before the outage stay stored; a retry skips them as already stored."""
    if transient(error) and not store.ping():
        raise StoreUnavailable(describe_error(error)) from error


def _write_repaired(store: Store, trace: TraceRecord, error: Exception) -> Stored:
    """One trace again with its content capped; refused (and logged) if even that fails."""
    try:
        return _write(store, [trace], repaired=describe_error(error))
    except Exception as exc:
        raise_if_unavailable(store, exc)
        log.error("OTLP trace %s could not be stored even capped (%s)", trace.id, describe_error(exc))
        return Stored(refused=len(trace.spans))
