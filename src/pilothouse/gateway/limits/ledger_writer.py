"""Group commit for the write-ahead ledger: the records of concurrent calls share one transaction.

A request awaits `submit()` until its record is committed (the call must not go upstream before), so the
write is durable; many requests' records in one commit keep that cheap under load, as the trace writer does
(tracing/sink.py). One background thread owns the writes; a batch that fails is retried record by record, so
one bad record fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from pilothouse.store.engine import Store
from pilothouse.store.inflight import InflightCall, insert_calls

log = logging.getLogger("pilothouse.ledger")

Op = Callable[[Connection], Any]
_STOP = object()


class LedgerWriter:
    def __init__(self, store: Store, *, batch_max: int = 256) -> None:
        self._store = store
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pilothouse-ledger-writer", daemon=True)
        self._closed = False
        self.commits = 0  # transactions committed (a batch of records is one)
        self._thread.start()

    async def submit(self, op: Op | InflightCall) -> Any:
        """Run `op(conn)` (or insert a record) inside a committed transaction shared with other requests;
        returns its result or raises its error (or the commit's). The records of a batch are one INSERT."""
        if self._closed:
            raise RuntimeError("the ledger writer is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._queue.put((op, loop, done))
        return await done

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

    def _commit(self, batch: list[Any]) -> None:
        try:
            with self._store.begin() as conn:
                insert_calls(conn, [op for op, _, _ in batch if isinstance(op, InflightCall)])
                results = [None if isinstance(op, InflightCall) else op(conn) for op, _, _ in batch]
            self.commits += 1
        except Exception as exc:
            if len(batch) == 1:
                self._resolve(batch[0], error=exc)
                return
            for item in batch:  # one by one: a bad record fails only its own request
                self._commit([item])
            return
        for item, result in zip(batch, results, strict=True):
            self._resolve(item, result=result)

    @staticmethod
    def _resolve(item: Any, *, result: Any = None, error: BaseException | None = None) -> None:
        _, loop, done = item

        def resolve() -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)

        with contextlib.suppress(RuntimeError):  # that request's event loop is already closed
            loop.call_soon_threadsafe(resolve)
