"""Chunk vectors for ingestion, computed in the background on every core while the caller chunks, scans and
writes other documents.

`VectorPipeline.submit(texts)` returns at once with a `PendingVectors`: each distinct text is reused (a vector
the collection already stores for the same text, or one this ingestion is already computing) or embedded by
a pool of EMBED_WORKERS threads, in slices of EMBED_SLICE texts of similar length (little padding). The
embedder's runtime releases the GIL, so the slices run on every core while the caller's thread prepares the
next batch of documents and writes the previous one: on 2 cores, both stay busy with embedding most of the
time instead of waiting for chunking, the injection scan and the store between batches.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from pilothouse.rag.embedders import TextEmbedder
from pilothouse.vectors.protocol import FloatArray

EMBED_WORKERS = max(1, os.cpu_count() or 1)
"""Threads embedding at once (one ONNX Runtime thread each)."""
EMBED_SLICE = 16
"""Texts per background job: enough for a few forward passes, small enough to keep every worker fed."""

Lookup = Callable[[Iterable[str]], dict[str, FloatArray]]
"""Text hashes -> the vectors the collection already stores for them (the ones it has)."""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class PendingVectors:
    """One batch's vectors by text hash, complete once the jobs it waits on are done."""

    ready: dict[str, FloatArray]
    waiting: list[tuple[str, Future[FloatArray], int]] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    """The hashes this batch sent to be embedded (the others were reused)."""

    def result(self) -> dict[str, FloatArray]:
        """Every vector of the batch (waits for its jobs; a job's error is raised here)."""
        for h, future, row in self.waiting:
            self.ready[h] = future.result()[row]
        self.waiting.clear()
        return self.ready


class VectorPipeline:
    """Background embedding for one ingestion run (a context manager: the pool stops on exit)."""

    def __init__(self, embedder: TextEmbedder, lookup: Lookup, *, workers: int = EMBED_WORKERS) -> None:
        self._embedder = embedder
        self._lookup = lookup
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rag-embed")
        self._inflight: dict[str, tuple[Future[FloatArray], int]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> VectorPipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=error is not None)

    def submit(self, texts: list[str]) -> tuple[PendingVectors, int]:
        """Start computing the vectors of `texts`; returns them pending and how many texts were reused (stored,
        already being computed, or repeated in `texts`) rather than embedded."""
        by_hash = {text_hash(t): t for t in texts}
        pending = PendingVectors(ready={})
        with self._lock:
            for h in by_hash:
                if (job := self._inflight.get(h)) is not None:
                    pending.waiting.append((h, *job))
        unresolved = [h for h in by_hash if h not in self._inflight]
        pending.ready.update(self._lookup(unresolved) if unresolved else {})
        missing = sorted((h for h in unresolved if h not in pending.ready), key=lambda h: len(by_hash[h]))
        with self._lock:
            for start in range(0, len(missing), EMBED_SLICE):
                part = missing[start : start + EMBED_SLICE]
                future = self._pool.submit(self._embed, [by_hash[h] for h in part])
                for row, h in enumerate(part):
                    self._inflight[h] = (future, row)
                    pending.waiting.append((h, future, row))
        pending.submitted = missing
        return pending, len(texts) - len(missing)

    def written(self, pending: PendingVectors) -> None:
        """The batch's vectors are in the store now: later batches find them there."""
        with self._lock:
            for h in pending.submitted:
                self._inflight.pop(h, None)

    def _embed(self, texts: list[str]) -> FloatArray:
        return np.asarray(self._embedder.embed(texts), dtype=np.float32)
