"""Group commit: one background thread takes what concurrent requests submit and writes it in batches.

A request awaits its item until the batch that holds it is committed, so what it wrote is durable when it
goes on; many requests share one transaction, which keeps that durability cheap under load. The trace
sink (tracing/sink.py), the audit writer of the gateway's refusals and the write-ahead ledger all run on
this loop and differ only in `commit`, which writes one batch and resolves each of its items.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_STOP = object()


class Pending(Generic[T]):
    """One submitted item and whoever waits for it: a request's future, or a thread's event."""

    __slots__ = ("done", "error", "event", "item", "loop", "result")

    def __init__(self, item: T, loop: asyncio.AbstractEventLoop | None) -> None:
        self.item = item
        self.loop = loop
        self.done: asyncio.Future[Any] | None = None if loop is None else loop.create_future()
        self.event: threading.Event | None = threading.Event() if loop is None else None
        self.result: Any = None
        self.error: BaseException | None = None

    def resolve(self, result: Any = None, error: BaseException | None = None) -> None:
        """Hand the outcome to the waiter (from the writer thread)."""
        if self.event is not None:
            self.result, self.error = result, error
            self.event.set()
            return
        assert self.loop is not None and self.done is not None
        done = self.done

        def settle() -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)

        with contextlib.suppress(RuntimeError):  # that request's event loop is already closed
            self.loop.call_soon_threadsafe(settle)


class BatchedWriter(ABC, Generic[T]):
    """Subclasses implement `commit(batch)`, which must resolve every item of the batch, and never raise
    for one bad item (a raise is caught, logged by the subclass if it wants, and fails the whole batch)."""

    def __init__(self, name: str, *, batch_max: int | None = 256) -> None:
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    async def submit(self, item: T) -> Any:
        """Queue `item`; returns once its batch is committed, with its result (or raises its error)."""
        if self._closed:
            raise RuntimeError(f"{self._thread.name} is closed")
        pending = Pending(item, asyncio.get_running_loop())
        self._queue.put(pending)
        assert pending.done is not None
        return await pending.done

    def submit_sync(self, item: T) -> Any:
        """For callers without an event loop (CLI tools, tests): blocks until committed."""
        if self._closed:
            raise RuntimeError(f"{self._thread.name} is closed")
        pending = Pending(item, None)
        self._queue.put(pending)
        assert pending.event is not None
        pending.event.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self, timeout_s: float = 30) -> None:
        """Write what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=timeout_s)

    @abstractmethod
    def commit(self, batch: list[Pending[T]]) -> None:
        """Write `batch` (in one transaction where it can) and resolve each of its items."""

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[Pending[T]] = [first]
            stop = False
            while self._batch_max is None or len(batch) < self._batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self.commit(batch)
            except Exception as exc:  # a bug in commit: no waiter may hang, and the thread goes on
                for pending in batch:
                    pending.resolve(error=exc)
            if stop:
                return
