"""Shared fixtures: real PostgreSQL (a fresh database per run), SQLite, and a running `pilothouse up`.

Services are used for real. When PostgreSQL is not reachable the tests that need it fail with a message
that says how to start it; nothing is skipped silently.

The suite runs in parallel under pytest-xdist (`scripts/test` passes `-n`): every PostgreSQL database is named
at random, every server listens on a free port in a temporary folder, and each worker has a Redis database
number of its own (below), so no two workers share state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from pilothouse.store.engine import Store, open_store
from tests.support.servers import RunningServer, start_server

PG_ADMIN_URL = os.environ.get("PILOTHOUSE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def worker_redis_db(worker: str | None) -> int:
    """The Redis database of an xdist worker (`gw0` → 1, `gw1` → 2, …; 0 without xdist), so keys the
    servers write under their default prefixes never meet another worker's. Redis has 16 databases by
    default: past 15 workers the numbers repeat, and the tests' own random key prefixes still keep them apart."""
    if not worker or not worker.startswith("gw") or not worker[2:].isdigit():
        return 0
    return 1 + int(worker[2:]) % 15


REDIS_URL = os.environ.get(
    "PILOTHOUSE_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{worker_redis_db(os.environ.get('PYTEST_XDIST_WORKER'))}"
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test run, dropped afterwards."""
    name = f"pilothouse_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.orig}). Start it with "
            "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' "
            "or point PILOTHOUSE_TEST_PG_ADMIN_URL at a server."
        )
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on both backends; each PostgreSQL test gets its own schema-fresh database."""
    if request.param == "sqlite":
        st = open_store(f"sqlite:///{tmp_path / 'test.db'}")
        yield st
        st.dispose()
        return
    base: str = request.getfixturevalue("pg_url")
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    st = open_store(base.rsplit("/", 1)[0] + "/" + name)
    yield st
    st.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on both backends, not migrated: migration tests upgrade it step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base: str = request.getfixturevalue("pg_url")
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`pilothouse up` with the bundled local models on SQLite, shared by the tests of a session."""
    srv = start_server(tmp_path_factory.mktemp("pilothouse-up"))
    yield srv
    srv.stop()
