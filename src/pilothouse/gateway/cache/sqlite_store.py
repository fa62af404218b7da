"""The SQLite cache backend: a single node's cache that survives restarts (`cache.backend = "sqlite"`).

Its own file (`<data_dir>/cache.db`, WAL, no fsync per commit), not the main database: cached answers are
disposable and have no migrations. Two tables: `entries` (namespace, key, value, expiry) and `vectors`, an
append-only log per partition with a sequence number, from which this process's NumPy index is filled
(mirror.py: on first use of a partition after a restart, and from other processes sharing the file).
Expired rows are deleted every `sweep_every_s`; beyond `max_entries` the entries closest to expiry go.
All SQL runs on one worker thread, so the event loop never waits on the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from pilothouse.gateway.cache.mirror import Mirror
from pilothouse.gateway.cache.store import VectorMatch, VectorRecord
from pilothouse.store.private_files import private_sqlite_file
from pilothouse.vectors import FloatArray

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expiry ON entries (expires_at);
CREATE TABLE IF NOT EXISTS vectors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, partition TEXT NOT NULL, key TEXT NOT NULL, text TEXT NOT NULL,
    vector BLOB NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_partition ON vectors (partition, seq);
CREATE INDEX IF NOT EXISTS vectors_expiry ON vectors (expires_at);
"""


class SQLiteCacheStore:
    name = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int = 50_000,
        max_vectors_per_partition: int = 100_000,
        max_vectors: int = 200_000,
        sync_batch: int = 512,
        sweep_every_s: float = 60.0,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self.sweep_every_s = sweep_every_s
        self._next_sweep = time.monotonic() + sweep_every_s
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pilothouse-cache-sqlite")
        private_sqlite_file(path)  # 0600, like the store: cached answers hold prompt content
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.mirror: Mirror[int] = Mirror(
            self._fetch, max_per_partition=max_vectors_per_partition, max_total=max_vectors, sync_batch=sync_batch
        )
        self.index = self.mirror.index

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    # -- entries ----------------------------------------------------------------------------------
    async def get(self, namespace: str, key: str) -> bytes | None:
        def work() -> bytes | None:
            row = self._db.execute(
                "SELECT value, expires_at FROM entries WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
            if row is None or row[1] <= time.time():
                return None
            return bytes(row[0])

        return await self._run(work)

    async def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        def work() -> None:
            self._db.execute(
                "INSERT OR REPLACE INTO entries (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)",
                (namespace, key, value, time.time() + ttl_s),
            )
            self._maybe_sweep()

        await self._run(work)

    async def delete(self, namespace: str, key: str) -> None:
        await self._run(
            lambda: self._db.execute("DELETE FROM entries WHERE namespace = ? AND key = ?", (namespace, key))
        )

    def _maybe_sweep(self) -> None:
        """Runs on the worker: drop expired rows; keep at most `max_entries` entries."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + self.sweep_every_s
        now = time.time()
        self._db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
        self._db.execute("DELETE FROM vectors WHERE expires_at <= ?", (now,))
        (count,) = self._db.execute("SELECT count(*) FROM entries").fetchone()
        if count > self.max_entries:
            self._db.execute(
                "DELETE FROM entries WHERE (namespace, key) IN "
                "(SELECT namespace, key FROM entries ORDER BY expires_at LIMIT ?)",
                (count - self.max_entries,),
            )

    # -- vectors ----------------------------------------------------------------------------------
    async def add_vector(self, partition: str, record: VectorRecord) -> None:
        blob = np.asarray(record.vector, dtype="<f4").tobytes()

        def work() -> None:
            self._db.execute(
                "INSERT INTO vectors (partition, key, text, vector, expires_at) VALUES (?, ?, ?, ?, ?)",
                (partition, record.key, record.text, blob, record.expires_at),
            )

        await self._run(work)

    async def refresh(self, partition: str) -> None:
        await self.mirror.refresh(partition)

    async def _fetch(
        self, partition: str, cursor: int | None, count: int
    ) -> tuple[list[VectorRecord], int | None, int]:
        def work() -> list[tuple[int, str, str, bytes, float]]:
            return self._db.execute(
                "SELECT seq, key, text, vector, expires_at FROM vectors WHERE partition = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (partition, cursor or 0, count),
            ).fetchall()

        rows = await self._run(work)
        if not rows:
            return [], cursor, 0
        now = time.time()
        records = [
            VectorRecord(key, text, np.frombuffer(blob, dtype="<f4").copy(), expires_at)
            for _, key, text, blob, expires_at in rows
            if expires_at > now
        ]
        return records, rows[-1][0], len(rows)

    def search_vectors(self, partition: str, vector: FloatArray, *, limit: int, min_score: float) -> list[VectorMatch]:
        return self.mirror.search(partition, vector, limit=limit, min_score=min_score)

    async def aclose(self) -> None:
        await self.mirror.aclose()
        await self._run(self._db.close)
        self._worker.shutdown(wait=True)
