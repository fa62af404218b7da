"""New trace rows on SQLite go to the driver as one multi-row `INSERT ... RETURNING` (tracing/merge.py
`_insert_sqlite`): each value must be stored exactly as SQLAlchemy's own insert stores it (the same bind
processing: money as pico-dollars, tags as JSON text, `null` for none), a stored id is left alone and not
returned, and batches past one statement's worth of rows are split."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.tracing import merge
from pilothouse.tracing.model import TraceRecord

T0 = 1_700_000_000.0


def _rows(project_id: str) -> list[dict[str, Any]]:
    rows = []
    for i, (tags, cost) in enumerate(
        [(None, Decimal(0)), (["a", "b"], Decimal("0.000123456789")), ([], Decimal("12.5")), (["x"], Decimal(3))]
    ):
        trace = TraceRecord(project_id=project_id, name=f"t{i}", id=f"{i:032x}", started_at=T0 + i, tags=tags)
        trace.ended_at = None if i == 2 else T0 + i + 0.25
        trace.user_id, trace.prompt_version = ("u" if i % 2 else None), (i if i else None)
        row = trace.row()
        row["cost_usd"], row["source"] = cost, ("otlp" if i % 2 else None)
        rows.append(row)
    return rows


def _stored(path: Path) -> list[dict[str, tuple[Any, str]]]:
    """Every value of the traces table with its SQLite storage class, by column."""
    with sqlite3.connect(path) as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(traces)")]
        pairs = ", ".join(f"{c}, typeof({c})" for c in cols)
        rows = db.execute(f"SELECT {pairs} FROM traces ORDER BY id").fetchall()
    return [{c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(cols)} for row in rows]


def _store(tmp_path: Path, name: str) -> tuple[Store, str]:
    store = open_store(f"sqlite:///{tmp_path / name}")
    with store.begin() as conn:
        return store, create_project(conn, "p").id


def test_stored_exactly_as_sqlalchemy_stores_them(tmp_path: Path) -> None:
    ours, project = _store(tmp_path, "ours.db")
    theirs, other = _store(tmp_path, "theirs.db")
    rows = _rows(project)
    with ours.begin() as conn:
        created = merge._insert_sqlite(conn, rows)
    with theirs.begin() as conn:
        statement = merge._trace_statement("sqlite", "insert")
        theirs_created = {r.id for r in conn.execute(statement, [{**r, "project_id": other} for r in rows])}
    assert created == theirs_created == {r["id"] for r in rows}
    ours.dispose()
    theirs.dispose()
    got, want = _stored(tmp_path / "ours.db"), _stored(tmp_path / "theirs.db")
    assert [r.pop("project_id") for r in got] == [(project, "text")] * 4
    assert [r.pop("project_id") for r in want] == [(other, "text")] * 4
    assert got == want
    assert [r["tags"][0] for r in got] == ["null", '["a", "b"]', "[]", '["x"]']  # the JSON type's own text
    assert [r["cost_usd"] for r in got][1] == (123_456_789, "integer")  # pico-dollars


def test_stored_ids_are_left_alone_and_batches_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, project = _store(tmp_path, "s.db")
    rows = _rows(project)
    with store.begin() as conn:
        assert merge._insert_sqlite(conn, rows[:1]) == {rows[0]["id"]}
    monkeypatch.setattr(merge, "_SQLITE_ROWS", 2)  # 4 rows: two statements
    changed = [{**row, "name": "again"} for row in rows]
    with store.begin() as conn:
        assert merge._insert_sqlite(conn, changed) == {r["id"] for r in rows[1:]}
    store.dispose()
    names = [row["name"][0] for row in _stored(tmp_path / "s.db")]
    assert names == ["t0", "again", "again", "again"]  # the stored row is not overwritten


def test_a_row_missing_a_column_goes_through_sqlalchemy(tmp_path: Path) -> None:
    """A writer's row without every column gets the columns' defaults, as before (not NULLs)."""
    store, project = _store(tmp_path, "d.db")
    row = {k: v for k, v in _rows(project)[0].items() if k not in ("input_tokens", "cost_usd")}
    with store.begin() as conn:
        assert merge._write_trace_rows(conn, [row]) == ({row["id"]}, set())
    store.dispose()
    stored = _stored(tmp_path / "d.db")[0]
    assert (stored["input_tokens"], stored["cost_usd"]) == ((0, "integer"), (0, "integer"))  # their defaults
