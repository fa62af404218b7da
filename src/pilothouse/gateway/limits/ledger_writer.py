"""Group commit for the write-ahead ledger: the records of concurrent calls share one transaction.

A request awaits `submit()` until its record is committed (the call must not go upstream before), so the
write is durable; many requests' records in one commit keep that cheap under load, as the trace writer does
(tracing/sink.py). One background thread owns the writes; a batch that fails is retried record by record, so
one bad record fails only its own request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from pilothouse.store.batched_writer import BatchedWriter, Pending
from pilothouse.store.engine import Store
from pilothouse.store.inflight import InflightCall, insert_calls

Op = Callable[[Connection], Any]


class LedgerWriter(BatchedWriter["Op | InflightCall"]):
    def __init__(self, store: Store, *, batch_max: int = 256) -> None:
        self._store = store
        self.commits = 0  # transactions committed (a batch of records is one)
        super().__init__("pilothouse-ledger-writer", batch_max=batch_max)

    async def submit(self, op: Op | InflightCall) -> Any:
        """Run `op(conn)` (or insert a record) inside a committed transaction shared with other requests;
        returns its result or raises its error (or the commit's). The records of a batch are one INSERT."""
        return await super().submit(op)

    def commit(self, batch: list[Pending[Op | InflightCall]]) -> None:
        try:
            with self._store.begin() as conn:
                insert_calls(conn, [p.item for p in batch if isinstance(p.item, InflightCall)])
                results = [None if isinstance(p.item, InflightCall) else p.item(conn) for p in batch]
            self.commits += 1
        except Exception as exc:
            if len(batch) == 1:
                batch[0].resolve(error=exc)
                return
            for pending in batch:  # one by one: a bad record fails only its own request
                self.commit([pending])
            return
        for pending, result in zip(batch, results, strict=True):
            pending.resolve(result)
