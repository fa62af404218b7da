"""Trace sinks. The store sink group-commits: traces from concurrent requests share one transaction.

A request awaits `write()` until its trace (with all its spans) is committed, so an answered request always
has its trace, and a trace is never half-written (trace and spans go in one transaction). Batching many
requests into one commit keeps that durability cheap under load. If the database stays unavailable, traces
are appended to a spill file in the data directory and replayed into the store at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from pilothouse.store.engine import Store
from pilothouse.store.tables import spans, traces
from pilothouse.tracing.model import TraceRecord

log = logging.getLogger("pilothouse.tracing")

_STOP = object()


class TraceSink(Protocol):
    async def write(self, trace: TraceRecord) -> None:
        """Persist one finished trace; returns when it is durable."""
        ...

    def close(self) -> None:
        """Flush everything pending and stop."""
        ...


def _rows(batch: list[TraceRecord]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    trace_rows = [t.row() for t in batch]
    span_rows = [s.row() for t in batch for s in t.spans]
    return trace_rows, span_rows


def _jsonable(value: Any) -> Any:
    return str(value)


class StoreSink:
    """Writes traces to the store from one background thread, many traces per transaction."""

    def __init__(self, store: Store, *, spill_path: Path, batch_max: int = 256, retries: int = 3) -> None:
        self._store = store
        self._spill = spill_path
        self._batch_max = batch_max
        self._retries = retries
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pilothouse-trace-writer", daemon=True)
        self._closed = False
        self.written = 0
        self.spilled = 0
        self._thread.start()

    async def write(self, trace: TraceRecord) -> None:
        if self._closed:
            raise RuntimeError("trace sink is closed")
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((trace, loop, done))
        await done

    def write_sync(self, trace: TraceRecord) -> None:
        """For callers without an event loop (CLI tools, tests): blocks until committed."""
        if self._closed:
            raise RuntimeError("trace sink is closed")
        event = threading.Event()
        self._queue.put((trace, None, event))
        event.wait()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self._batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _insert(self, records: list[TraceRecord]) -> Exception | None:
        """One transaction for all `records`, retried with backoff; returns the last error, if any."""
        trace_rows, span_rows = _rows(records)
        error: Exception | None = None
        for attempt in range(self._retries):
            try:
                with self._store.begin() as conn:
                    conn.execute(insert(traces), trace_rows)
                    if span_rows:
                        conn.execute(insert(spans), span_rows)
                self.written += len(records)
                return None
            except IntegrityError as exc:  # a bad row: retrying the same rows cannot help
                return exc
            except Exception as exc:  # the database is down or busy
                error = exc
                time.sleep(0.05 * (2**attempt))
        return error

    def _commit(self, batch: list[Any]) -> None:
        records: list[TraceRecord] = [b[0] for b in batch]
        try:
            error = self._insert(records)
            if isinstance(error, IntegrityError) and len(records) > 1:
                # One bad trace must not keep the others out: store them one by one, spill only the failures.
                failed = [r for r in records if self._insert([r]) is not None]
            else:
                failed = records if error is not None else []
            if failed:
                log.error("could not store %d traces (%s); spilling to %s", len(failed), error, self._spill)
                self._spill_records(failed)
        except Exception:  # e.g. the spill file is not writable: the writer thread and the waiters must go on
            log.exception("could not store or spill %d traces; they are lost", len(records))
        finally:
            for _, loop, done in batch:
                if loop is None:
                    done.set()
                else:
                    with contextlib.suppress(RuntimeError):  # that request's event loop is already closed
                        loop.call_soon_threadsafe(_resolve, done)

    def _spill_records(self, records: list[TraceRecord]) -> None:
        self._spill.parent.mkdir(parents=True, exist_ok=True)
        with self._spill.open("ab") as fh:
            for t in records:
                trace_row, span_rows = _rows([t])
                fh.write(orjson.dumps({"trace": trace_row[0], "spans": span_rows}, default=_jsonable) + b"\n")
        self.spilled += len(records)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def replay_spill(store: Store, spill_path: Path) -> int:
    """Load traces spilled by an earlier process into the store; returns how many were replayed."""
    if not spill_path.exists():
        return 0
    count = 0
    for line in spill_path.read_bytes().splitlines():
        if not line.strip():
            continue
        data = orjson.loads(line)
        trace_row = data["trace"]
        trace_row["cost_usd"] = Decimal(trace_row["cost_usd"])
        for s in data["spans"]:
            if s.get("cost_usd") is not None:
                s["cost_usd"] = Decimal(s["cost_usd"])
        try:
            with store.begin() as conn:
                conn.execute(insert(traces), [trace_row])
                if data["spans"]:
                    conn.execute(insert(spans), data["spans"])
            count += 1
        except IntegrityError:
            log.warning("spilled trace %s is already stored; skipped", trace_row["id"])
    spill_path.rename(spill_path.with_suffix(f".replayed-{int(time.time())}"))
    return count
