"""Trace sinks. The store sink group-commits: traces from concurrent requests share one transaction.

A request awaits `write()` until its trace (with all its spans) is committed, so an answered request always
has its trace, and a trace is never half-written (trace and spans go in one transaction). Batching many
requests into one commit keeps that durability cheap under load. If the database stays unavailable, traces
are appended to a spill file in the data directory and replayed into the store at the next start.

One trace must only ever affect itself. A trace whose content no store would take as is (JSON nested too
deep, values JSON cannot hold) is written with that content capped (`repair`). When a batch fails for any
reason but a database outage, its traces are stored one by one; one the store still refuses (NUL characters
in PostgreSQL, over-long strings, ...) is stored again capped, and only a trace that fails even then is
spilled. A request is answered only after its trace is stored or spilled; logging an error never formats
the failed rows (`describe_error`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

from pilothouse.store.batched_writer import BatchedWriter, Pending
from pilothouse.store.engine import Store
from pilothouse.store.inflight import finish_calls
from pilothouse.store.private_files import append_private
from pilothouse.tracing import span_table
from pilothouse.tracing.capture import ContentCapture
from pilothouse.tracing.merge import Repeats, store_parts
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.repair import describe_error, repair_rows

log = logging.getLogger("pilothouse.tracing")


class TraceSink(Protocol):
    async def write(self, trace: TraceRecord) -> None:
        """Persist one finished trace; returns when it is durable."""
        ...

    def close(self) -> None:
        """Flush everything pending and stop."""
        ...


class _Rows:
    """The rows of a batch of traces, and their spans encoded for the table (tracing/span_table.py); a trace
    whose content no store would take as is (`Unfit`) is already repaired here, so it never fails the batch."""

    def __init__(self, batch: list[TraceRecord]) -> None:
        self.traces: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []
        self.values: list[tuple[Any, ...]] = []
        self.repaired: list[tuple[str, str]] = []  # (trace id, why)
        self.ledger_ids = [t.ledger_id or t.id for t in batch]  # the in-flight records these traces end
        for t in batch:
            trace_row, span_rows = t.row(), [s.row() for s in t.spans]
            try:
                values = span_table.encode_all(span_rows)
            except span_table.Unfit as exc:
                trace_row, span_rows = repair_rows(trace_row, span_rows, str(exc))
                values = span_table.encode_all(span_rows)
                self.repaired.append((t.id, str(exc)))
            self.traces.append(trace_row)
            self.spans += span_rows
            self.values += values


def _jsonable(value: Any) -> Any:
    return str(value)  # Decimal as text (any other odd object too; one whose str() fails makes the line repaired)


class StoreSink(BatchedWriter[TraceRecord]):
    """Writes traces to the store from one background thread, many traces per transaction."""

    def __init__(self, store: Store, *, spill_path: Path, batch_max: int = 256, retries: int = 3) -> None:
        self._store = store
        self._spill = spill_path
        self._retries = retries
        self.written = 0  # traces committed, `repaired` ones included
        self.repaired = 0  # traces stored only after capping their content (tracing/repair.py)
        self.spilled = 0  # traces appended to the spill file, replayed at the next start
        self.lost = 0  # traces neither stored nor spilled (the spill file was unwritable); each one is logged
        self._listeners: list[Callable[[list[TraceRecord]], None]] = []
        self._capture = ContentCapture(store)  # each project's content capture (off, redacted, full)
        super().__init__("pilothouse-trace-writer", batch_max=batch_max)

    def add_listener(self, listener: Callable[[list[TraceRecord]], None]) -> None:
        """Call `listener` with each batch once it is stored (or spilled), from the writer thread: it must not
        block (the OTLP exporter queues). Content is in its stored form; a listener's error is logged."""
        self._listeners.append(listener)

    async def write(self, trace: TraceRecord) -> None:
        await self.submit(trace)

    def write_sync(self, trace: TraceRecord) -> None:
        """For callers without an event loop (CLI tools, tests): blocks until committed."""
        self.submit_sync(trace)

    def _insert(self, records: list[TraceRecord], *, retries: int) -> Exception | None:
        """One transaction for all `records`, transient failures retried with backoff; returns the error, if any."""
        try:
            self._capture.apply(records)
            rows = _Rows(records)
        except Exception as exc:  # RecursionError and friends included: one trace must not stop the writer
            return exc
        error: Exception | None = None
        for attempt in range(retries):
            try:
                _insert_rows(self._store, rows.traces, rows.spans, values=rows.values, ledger_ids=rows.ledger_ids)
            except Exception as exc:
                error = exc
                if not transient(exc):  # a bad row: retrying the same rows cannot help
                    return exc
                if attempt + 1 < retries:
                    time.sleep(0.05 * (2**attempt))
                continue
            self.written += len(records)
            for trace_id, reason in rows.repaired:
                self._stored_repaired(trace_id, reason)
            return None
        return error

    def _insert_repaired(self, record: TraceRecord, error: Exception) -> Exception | None:
        """Store a copy of `record` with its odd content capped (see `repair`); returns the error, if any."""
        reason = describe_error(error)
        try:
            trace_row, span_rows = repair_rows(record.row(), [s.row() for s in record.spans], reason)
            _insert_rows(self._store, [trace_row], span_rows, ledger_ids=[record.ledger_id or record.id])
        except Exception as exc:
            return exc
        self.written += 1
        self._stored_repaired(record.id, reason)
        return None

    def _stored_repaired(self, trace_id: str, reason: str) -> None:
        self.repaired += 1
        log.warning("trace %s could not be stored as sent (%s); stored with its content capped", trace_id, reason)

    def _unavailable(self, error: Exception) -> bool:
        """The database itself is down (not one bad row): nothing would be stored one by one either."""
        return transient(error) and not self._store.ping()

    def commit(self, batch: list[Pending[TraceRecord]]) -> None:
        records = [pending.item for pending in batch]
        try:
            self._store_all(records)
            for listener in self._listeners:
                try:
                    listener(records)
                except Exception as exc:
                    log.error("a trace listener failed (%s)", describe_error(exc))
        except Exception as exc:  # a bug here must not stop the writer thread or leave a request waiting
            log.error("could not store or spill %d traces (%s); they are lost", len(records), describe_error(exc))
            self.lost += len(records)
        finally:
            for pending in batch:
                pending.resolve()

    def _store_all(self, records: list[TraceRecord]) -> None:
        """The batch in one transaction; failing that, trace by trace, so one bad trace only affects itself.

        A trace the store refuses is stored again with its content capped; only what still fails (or everything,
        while the database is down) goes to the spill file."""
        error = self._insert(records, retries=self._retries)
        if error is None:
            return
        for i, record in enumerate(records):
            if error is not None and self._unavailable(error):
                self._spill_records(records[i:], error)
                return
            if len(records) > 1:
                error = self._insert([record], retries=1)
                if error is None:
                    continue
            assert error is not None
            if not isinstance(error, IntegrityError):  # a clash of ids cannot be repaired; anything else may be
                repair_error = self._insert_repaired(record, error)
                if repair_error is None:
                    error = None
                    continue
                error = repair_error
            self._spill_records([record], error)

    def _spill_records(self, records: list[TraceRecord], error: Exception) -> None:
        log.error("could not store %d traces (%s); spilling to %s", len(records), describe_error(error), self._spill)
        lines: list[bytes] = []
        for t in records:
            try:
                lines.append(_spill_line(t))
            except Exception as exc:
                log.error("could not spill trace %s (%s); it is lost", t.id, describe_error(exc))
                self.lost += 1
        if not lines:
            return
        try:
            append_private(self._spill, b"".join(lines))
        except Exception as exc:
            log.error(
                "could not spill %d traces to %s (%s); they are lost", len(lines), self._spill, describe_error(exc)
            )
            self.lost += len(lines)
            return
        self.spilled += len(lines)


def _insert_rows(
    store: Store,
    trace_rows: list[dict[str, Any]],
    span_rows: list[dict[str, Any]],
    *,
    values: list[tuple[Any, ...]] | None = None,
    repeats: Repeats = "skip",
    ledger_ids: list[str] | None = None,
) -> None:
    """Traces and their spans in one transaction: a trace is never half-written. The write-ahead records of
    these calls (store/inflight.py) end in the same transaction: a call is in flight or traced, never both."""
    with store.begin() as conn:
        # a trace may come in parts (SDK batches, gateway calls joining it): upserted and appended, counted in
        # the rollups and added to the full-text index (tracing/merge.py)
        written = store_parts(conn, trace_rows, span_rows, values=values, repeats=repeats)
        finish_calls(conn, ledger_ids if ledger_ids is not None else [row["id"] for row in written.traces])


def transient(error: BaseException) -> bool:
    """Worth retrying: the database failed (connection, lock, timeout), not the rows we sent."""
    if not isinstance(error, DBAPIError):
        return False  # a Python error while preparing the rows (RecursionError, TypeError, ...)
    return error.connection_invalidated or not isinstance(error, IntegrityError | DataError | ProgrammingError)


def _spill_line(record: TraceRecord) -> bytes:
    """One JSON line; a trace orjson cannot write as is (odd keys, numbers or text) is written repaired."""
    rows = _Rows([record])
    try:
        return orjson.dumps({"trace": rows.traces[0], "spans": rows.spans}, default=_jsonable) + b"\n"
    except TypeError as exc:  # orjson.JSONEncodeError
        trace_row, span_rows = repair_rows(rows.traces[0], rows.spans, describe_error(exc))
        return orjson.dumps({"trace": trace_row, "spans": span_rows}, default=_jsonable) + b"\n"


def replay_spill(store: Store, spill_path: Path) -> int:
    """Load traces spilled by an earlier process into the store; returns how many were replayed.

    A trace the store refuses as spilled is stored repaired. A line that cannot be read or stored even then
    (a torn last line after a crash, an edited file) is kept in `<spill>.rejected-<time>` and logged: start-up
    goes on, and nothing is deleted."""
    if not spill_path.exists():
        return 0
    count = 0
    rejected: list[bytes] = []
    for number, line in enumerate(spill_path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            trace_row, span_rows = _spilled_rows(line)
        except Exception as exc:
            log.error("line %d of %s is not a spilled trace (%s); kept aside", number, spill_path, describe_error(exc))
            rejected.append(line)
            continue
        error = _replay_one(store, trace_row, span_rows)
        if error is None:
            count += 1
        elif isinstance(error, IntegrityError):
            log.warning("spilled trace %s is already stored; skipped", trace_row.get("id"))
        else:
            log.error(
                "spilled trace %s could not be stored (%s); kept aside", trace_row.get("id"), describe_error(error)
            )
            rejected.append(line)
    stamp = int(time.time())
    if rejected:
        kept = spill_path.with_suffix(f".rejected-{stamp}")
        kept.write_bytes(b"\n".join(rejected) + b"\n")
        log.error("%d spilled traces could not be replayed; they are kept in %s", len(rejected), kept)
    spill_path.rename(spill_path.with_suffix(f".replayed-{stamp}"))
    return count


def _spilled_rows(line: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = orjson.loads(line)
    trace_row = dict(data["trace"])
    trace_row["cost_usd"] = Decimal(trace_row["cost_usd"])
    span_rows = [dict(s) for s in data["spans"]]
    for s in span_rows:
        if s.get("cost_usd") is not None:
            s["cost_usd"] = Decimal(s["cost_usd"])
    return trace_row, span_rows


def _replay_one(store: Store, trace_row: dict[str, Any], span_rows: list[dict[str, Any]]) -> Exception | None:
    try:
        _insert_rows(store, [trace_row], span_rows, repeats="refuse")  # already stored: skipped, not counted
        return None
    except IntegrityError as exc:
        return exc
    except Exception as exc:
        error = exc
    try:
        fixed_trace, fixed_spans = repair_rows(trace_row, span_rows, describe_error(error))
        _insert_rows(store, [fixed_trace], fixed_spans, repeats="refuse")
    except Exception as exc:
        return exc
    return None
