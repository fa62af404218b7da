"""Throwaway stores for the write benchmarks (bench/trace_writer.py, bench/otlp_ingest.py): a SQLite file in a
temporary folder, or a new PostgreSQL database dropped afterwards, and the CPU the PostgreSQL server spends on it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from pilothouse.store.engine import Store, open_store

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_store(backend: str, prefix: str) -> Iterator[Store]:
    """A migrated, empty store of `backend` (sqlite or postgresql), removed when the block ends."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
            try:
                yield store
            finally:
                store.dispose()
        return
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        store = open_store(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
        try:
            yield store
        finally:
            store.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_cpu(store: Store) -> Callable[[], float]:
    """CPU seconds of the PostgreSQL processes serving this database (PostgreSQL on this machine; 0 for SQLite,
    whose work is the benchmark's own process; NaN when a process cannot be read)."""
    if store.dialect != "postgresql":
        return lambda: 0.0
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        with store.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
            total = 0.0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    return float("nan")
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    return cpu
