"""Opening the store: engine set-up per backend (SQLite WAL or PostgreSQL) and migrations to head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from pilothouse.store.migrate import upgrade_to_head
from pilothouse.store.private_files import private_sqlite_file


class StoreError(Exception):
    """The store cannot be opened or used; the message names the URL (without password) and the fix."""


class Store:
    """A handle on the database. Repositories take a `Connection` from `begin()` / `connect()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success and rolled back on error."""
        with self.engine.connect() as conn:
            # On SQLite this makes the transaction BEGIN IMMEDIATE: the write lock is taken up front, so
            # read-then-write code (bootstrap, audit appends, revocations) cannot race or deadlock.
            conn.execution_options(pilothouse_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (autobegin; nothing is committed)."""
        with self.engine.connect() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    # 32 MiB of page cache per connection (SQLite's default is 2 MiB): a pooled connection that writes a batch of
    # spans, their search rows and rollups keeps the indexes' hot pages; at most 8 + 10 pooled connections
    cur.execute("PRAGMA cache_size=-32768")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """Start every transaction explicitly; write transactions (Store.begin) take the write lock at once."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pilothouse_write") else "BEGIN")


def make_engine(url: str) -> Engine:
    """Create the engine for `url` with settings fit for a multi-threaded server."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and "uri" not in parsed.query:
            try:
                private_sqlite_file(Path(parsed.database))  # 0600 before SQLite creates it (and its -wal, -shm)
            except OSError as exc:
                raise StoreError(f"cannot create the SQLite database {parsed.database}: {exc.strerror}") from exc
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, pool_size=8)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True)
    raise StoreError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the database at `url` and bring its schema to the newest migration."""
    engine = make_engine(url)
    safe = make_url(url).render_as_string(hide_password=True)
    try:
        if migrate:
            upgrade_to_head(engine)
        else:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
    except DBAPIError as exc:  # unreachable, refused, or not a database at all
        engine.dispose()
        raise StoreError(f"cannot open the database at {safe}: {exc.orig}") from exc
    return Store(engine)
