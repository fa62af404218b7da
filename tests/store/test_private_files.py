"""The SQLite store keeps prompt content: its directory is created 0700 and the database with its -wal and
-shm files is 0600, whatever the umask, and an existing database left readable by others is tightened."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.store.engine import StoreError, open_store
from pilothouse.store.private_files import append_private, private_dir, write_private
from pilothouse.store.projects import create_project, list_projects


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A umask that would leave new files readable by others (0o000: writable too)."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_a_new_store_is_private(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "nested" / "data"
    store = open_store(f"sqlite:///{data / 'pilothouse.db'}")
    try:
        with store.begin() as conn:
            create_project(conn, "written")  # a write: the WAL and its index exist now
        with store.connect() as conn:
            assert [p.name for p in list_projects(conn)] == ["written"]
        files = {p.name: mode(p) for p in data.iterdir()}
        assert files == {"pilothouse.db": 0o600, "pilothouse.db-wal": 0o600, "pilothouse.db-shm": 0o600}
        assert mode(data) == 0o700
    finally:
        store.dispose()


def test_an_existing_readable_database_is_tightened(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)  # as an earlier version left it: 0644 (or 0666), WAL files beside it
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    sides = [tmp_path / "old.db-wal", tmp_path / "old.db-shm"]
    for file in (path, *sides):
        assert file.exists()
        os.chmod(file, 0o644)
    store = open_store(f"sqlite:///{path}", migrate=False)
    try:
        assert [mode(f) for f in (path, *sides)] == [0o600, 0o600, 0o600]
    finally:
        store.dispose()
        db.close()


def test_an_existing_directory_is_the_operators(tmp_path: Path, umask: int, caplog: pytest.LogCaptureFixture) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    private_dir(shared)
    assert mode(shared) == 0o755  # not changed behind the operator's back, but said
    assert "chmod 700" in caplog.text and str(shared) in caplog.text


def test_write_private_tightens_a_readable_file_before_writing(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new-dir" / "secret"
    write_private(path, "one\n")
    assert (mode(path.parent), mode(path), path.read_text()) == (0o700, 0o600, "one\n")
    os.chmod(path, 0o644)
    write_private(path, "two\n")
    assert (mode(path), path.read_text()) == (0o600, "two\n")


def test_a_database_path_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the SQLite database"):
        open_store(f"sqlite:///{blocker / 'pilothouse.db'}")


def test_spill_files_are_private_and_appended(tmp_path: Path, umask: int) -> None:
    """The trace and audit spill files hold prompt content: 0600 in a 0700 folder, appended, never truncated."""
    path = tmp_path / "spill-dir" / "traces.spill.jsonl"
    append_private(path, b"one\n")
    os.chmod(path, 0o644)
    append_private(path, b"two\n")
    assert (mode(path.parent), mode(path), path.read_bytes()) == (0o700, 0o600, b"one\ntwo\n")
