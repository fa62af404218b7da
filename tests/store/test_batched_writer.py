"""The group-commit loop shared by the trace sink, the audit writer and the write-ahead ledger."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pilothouse.store.batched_writer import BatchedWriter, Pending


class Recording(BatchedWriter[int]):
    """Commits a batch by recording it; item 13 fails its batch (a bug in commit), item -1 only itself."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        super().__init__("test-writer", batch_max=4)

    def commit(self, batch: list[Pending[int]]) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        items = [p.item for p in batch]
        if 13 in items:
            raise ValueError("unlucky batch")
        self.batches.append(items)
        for pending in batch:
            if pending.item < 0:
                pending.resolve(error=ValueError("bad item"))
            else:
                pending.resolve(pending.item * 2)


async def test_concurrent_items_share_batches_and_get_their_own_results() -> None:
    gate = threading.Event()
    writer = Recording(gate)
    try:
        first = asyncio.ensure_future(writer.submit(0))
        await asyncio.sleep(0.05)  # the thread holds item 0 in commit, behind the gate
        rest = [asyncio.ensure_future(writer.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.05)
        gate.set()
        assert await first == 0
        assert await asyncio.gather(*rest) == [2 * i for i in range(1, 10)]
        assert writer.batches[0] == [0] and all(len(b) <= 4 for b in writer.batches)
        assert sorted(i for b in writer.batches for i in b) == list(range(10))
        assert len(writer.batches) < 10  # grouped
    finally:
        writer.close()


async def test_one_bad_item_fails_only_itself_and_a_failing_commit_fails_its_batch_not_the_writer() -> None:
    writer = Recording()
    try:
        with pytest.raises(ValueError, match="bad item"):
            await writer.submit(-1)
        with pytest.raises(ValueError, match="unlucky batch"):
            await writer.submit(13)
        assert await writer.submit(5) == 10  # the thread goes on
    finally:
        writer.close()


def test_sync_callers_and_close() -> None:
    writer = Recording()
    assert writer.submit_sync(21) == 42
    with pytest.raises(ValueError, match="bad item"):
        writer.submit_sync(-1)
    writer.close()
    writer.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit_sync(1)
