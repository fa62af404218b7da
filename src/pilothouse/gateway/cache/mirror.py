"""A process's copy of a shared semantic index (Redis, SQLite), kept up to date incrementally.

The shared store keeps vectors in an append-only log per partition (a Redis stream, an SQLite table with a
sequence number). `Mirror` holds the partitions in a vector index (`vectors.MemoryVectorIndex`) and, per
partition, how far into the log it has read; `refresh` reads what was appended since, at most `sync_batch`
entries at once; a longer backlog (a partition seen for the first time) is read page by page in the
background, so no lookup waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pilothouse.gateway.cache.store import VectorMatch, VectorRecord
from pilothouse.vectors import FloatArray, MemoryVectorIndex, VectorIndex

log = logging.getLogger("pilothouse.cache")

Cursor = TypeVar("Cursor")
# (partition, after this cursor or None for the start, at most n) -> (unexpired records, last cursor, entries read)
Fetch = Callable[[str, "Cursor | None", int], Awaitable[tuple[list[VectorRecord], "Cursor | None", int]]]

CATCH_UP_PAGE = 5000
_MAX_CURSORS = 500_000


class Mirror(Generic[Cursor]):
    def __init__(self, fetch: Fetch[Cursor], *, max_per_partition: int, max_total: int, sync_batch: int) -> None:
        self._fetch_page = fetch
        self.sync_batch = sync_batch
        self.index: VectorIndex = MemoryVectorIndex(
            max_per_partition=max_per_partition, max_total=max_total, on_evict=self._forget
        )
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()  # partition -> last log position read
        self._busy: set[str] = set()  # partitions being read
        self._catch_ups: set[asyncio.Task[None]] = set()

    async def refresh(self, partition: str) -> None:
        if partition in self._busy:
            return  # a read of this partition is under way (here or in the background)
        self._busy.add(partition)
        try:
            read = await self._read(partition, self.sync_batch)
        finally:
            self._busy.discard(partition)
        if read >= self.sync_batch and partition not in self._busy:
            self._busy.add(partition)
            task = asyncio.create_task(self._catch_up(partition))
            self._catch_ups.add(task)
            task.add_done_callback(self._catch_ups.discard)

    async def _catch_up(self, partition: str) -> None:
        try:
            while await self._read(partition, CATCH_UP_PAGE) >= CATCH_UP_PAGE:
                pass
        except Exception as exc:  # the next lookup's refresh continues from the cursor
            log.warning("semantic cache: reading partition %s failed: %s", partition, exc)
        finally:
            self._busy.discard(partition)

    async def _read(self, partition: str, count: int) -> int:
        records, cursor, read = await self._fetch_page(partition, self._cursors.get(partition), count)
        if read:
            self.index.add([record.item() for record in records], partition=partition)
        if cursor is not None:
            self._cursors[partition] = cursor
            self._cursors.move_to_end(partition)
            while len(self._cursors) > _MAX_CURSORS:
                self._cursors.popitem(last=False)
        return read

    def _forget(self, partition: str) -> None:
        """The index dropped this partition: read it from the start if it is used again."""
        self._cursors.pop(partition, None)

    def search(self, partition: str, vector: FloatArray, *, limit: int, min_score: float) -> list[VectorMatch]:
        hits = self.index.search(vector, k=limit, partition=partition, min_score=min_score)
        return [VectorMatch.from_hit(hit) for hit in hits]

    async def aclose(self) -> None:
        for task in list(self._catch_ups):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
