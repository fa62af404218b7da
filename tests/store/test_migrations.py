"""Migrations on SQLite and PostgreSQL: the schema matches the metadata, reruns are no-ops, replicas may race."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text

from pilothouse.store.engine import Store, StoreError, open_store
from pilothouse.store.migrate import alembic_config, current_revision, head_revision
from pilothouse.store.projects import create_project, get_project
from pilothouse.store.tables import in_metadata, metadata, projects
from tests.conftest import PG_ADMIN_URL


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (no tables at all), dropped afterwards."""
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_schema_equals_metadata(store: Store) -> None:
    with store.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True, "include_name": in_metadata}
        )
        assert compare_metadata(ctx, metadata) == []
    tables = set(inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables


def test_store_is_at_head(store: Store) -> None:
    head = head_revision(store.engine)
    assert head is not None
    assert current_revision(store.engine) == head


def test_open_store_twice_is_a_no_op(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.begin() as conn:
        project = create_project(conn, "kept")

    def no_upgrade(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("open_store on an up-to-date database ran a migration")

    monkeypatch.setattr(command, "upgrade", no_upgrade)
    again = open_store(_url(store))
    try:
        assert current_revision(again.engine) == head_revision(again.engine)
        with again.connect() as conn:
            assert get_project(conn, "kept") == project
            assert conn.execute(select(func.count()).select_from(projects)).scalar_one() == 1
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [head_revision(again.engine)]
    finally:
        again.dispose()


def test_open_store_without_migrate_creates_nothing(tmp_path: Path) -> None:
    st = open_store(f"sqlite:///{tmp_path / 'plain.db'}", migrate=False)
    try:
        assert inspect(st.engine).get_table_names() == []
        assert st.ping()
    finally:
        st.dispose()


@pytest.mark.postgres
def test_concurrent_first_opens_on_postgres(fresh_pg_url: str) -> None:
    """Replicas starting together on an empty database: the advisory lock lets exactly one migrate."""
    threads = 4
    barrier = threading.Barrier(threads)
    opened: list[Store] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def start() -> None:
        try:
            barrier.wait()
            st = open_store(fresh_pg_url)
            with lock:
                opened.append(st)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=start) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    try:
        assert errors == []
        assert len(opened) == threads
        st = opened[0]
        assert current_revision(st.engine) == head_revision(st.engine)
        with st.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": in_metadata})
            assert compare_metadata(ctx, metadata) == []
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        for st in opened:
            st.dispose()


def test_invalid_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        open_store("not a url")
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        open_store("mysql://user@localhost/db")


def test_unreachable_postgres_message_hides_the_password() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:1/nowhere")
    message = str(info.value)
    assert "cannot open the database at" in message
    assert "s3cr3t-pw" not in message
    assert "alice:***@127.0.0.1:1/nowhere" in message


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0004_makes_the_bootstrap_key_the_owner(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A store made before the owner role keeps one key that reaches every project: the bootstrap key."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    engine = create_engine(url)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0003_limits")
    keys = [
        ("key_boot", "bootstrap admin", "admin", None),
        ("key_made", "bootstrap admin", "admin", "key_boot"),  # same name, minted by a key: stays admin
        ("key_ops", "ops", "admin", None),
        ("key_app", "app", "service", "key_boot"),
    ]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, created_at) VALUES ('prj_1', 'default', 0)"))
        for key_id, name, role, created_by in keys:
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, project_id, name, prefix, key_hash, role, created_at, created_by) "
                    "VALUES (:id, 'prj_1', :name, :id, :id, :role, 0, :by)"
                ),
                {"id": key_id, "name": name, "role": role, "by": created_by},
            )
    engine.dispose()
    st = open_store(url)
    try:
        with st.connect() as conn:
            roles = dict(conn.execute(text("SELECT id, role FROM api_keys")).all())
        assert roles == {"key_boot": "owner", "key_made": "admin", "key_ops": "admin", "key_app": "service"}
    finally:
        st.dispose()
