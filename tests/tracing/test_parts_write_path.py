"""The trace writers' one write path (tracing/merge.py `store_parts`, tracing/span_table.py), on SQLite and
PostgreSQL: a trace written in parts is found by words from every part, counted once as a request with the
tokens of all its parts, its spans stored exactly as SQLAlchemy would store them, a repeated part skipped."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.rollups import summarise
from pilothouse.store.search import MAX_DOCUMENT_CHARS, matches
from pilothouse.store.tables import spans, traces
from pilothouse.tracing import span_table
from pilothouse.tracing.merge import store_parts
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

T0 = 1_700_000_000.0


@pytest.fixture
def project_id(store: Store) -> str:
    with store.begin() as conn:
        return create_project(conn, "parts").id


@pytest.fixture
def sink(store: Store, tmp_path: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    yield s
    s.close()


def _part(project_id: str, trace_id: str, *, source: str, words: str, start: float) -> TraceRecord:
    record = TraceRecord(project_id=project_id, name=source, id=trace_id, started_at=start, source=source)  # type: ignore[arg-type]
    record.ended_at = start + 1.0
    llm = record.span("llm", f"{source} call")
    llm.started_at, llm.ended_at, llm.latency_ms = start, start + 1.0, 1000.0
    llm.model, llm.input_tokens, llm.output_tokens, llm.cost_usd = "m", 10, 5, Decimal("0.001")
    llm.input = {"messages": [{"role": "user", "content": f"question about {words}"}]}
    llm.output = {"message": {"role": "assistant", "content": f"answer on {words}"}}
    return record


def _found(store: Store, q: str) -> set[str]:
    with store.connect() as conn:
        return set(conn.execute(select(traces.c.id).where(matches(store.dialect, q))).scalars())


def test_every_part_of_a_merged_trace_is_searchable(store: Store, sink: StoreSink, project_id: str) -> None:
    trace_id = "cd" * 16
    other = _part(project_id, "ef" * 16, source="sdk", words="unrelated lighthouse", start=T0)
    sink.write_sync(_part(project_id, trace_id, source="sdk", words="zeppelin harbour", start=T0))
    sink.write_sync(other)
    sink.write_sync(_part(project_id, trace_id, source="http", words="quokka marmalade", start=T0 + 5))
    sink.write_sync(_part(project_id, trace_id, source="otlp", words="walrus", start=T0 + 9))
    assert _found(store, "zeppelin") == {trace_id}  # the first part
    assert _found(store, "quokka marmalade") == {trace_id}  # the gateway's part
    assert _found(store, "walrus") == {trace_id}  # a third part
    assert _found(store, "harbour walrus") == {trace_id}  # words of different parts, together
    assert _found(store, "lighthouse") == {other.id}
    assert _found(store, "lighthouse walrus") == set()
    with store.connect() as conn:
        counted = summarise(conn, [project_id], T0 - 3600, T0 + 3600)[None].to_dict()
    assert counted["requests"] == 2  # later parts are not new requests
    assert (counted["input_tokens"], counted["llm_calls"]) == (40, 4)  # but their tokens and calls count


def test_a_trace_whose_first_part_had_no_text_is_indexed_by_a_later_part(
    store: Store, sink: StoreSink, project_id: str
) -> None:
    trace_id = "ab" * 16
    silent = TraceRecord(project_id=project_id, name="silent", id=trace_id, started_at=T0, source="sdk")
    silent.span("step", "no content")
    sink.write_sync(silent)
    sink.write_sync(_part(project_id, trace_id, source="sdk", words="narwhal", start=T0 + 1))
    assert _found(store, "narwhal") == {trace_id}


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # PostgreSQL keeps a tsvector (positions, not text)
def test_appended_text_stays_bounded_on_sqlite(store: Store, sink: StoreSink, project_id: str) -> None:
    assert store.dialect == "sqlite"
    trace_id = "ba" * 16
    long_words = "padding " * (MAX_DOCUMENT_CHARS // 8)
    sink.write_sync(_part(project_id, trace_id, source="sdk", words=long_words, start=T0))
    sink.write_sync(_part(project_id, trace_id, source="sdk", words="okapi", start=T0 + 1))
    with store.connect() as conn:
        (length,) = conn.exec_driver_sql(
            "SELECT length(document) FROM trace_search WHERE rowid = (SELECT rowid FROM traces WHERE id = ?)",
            (trace_id,),
        ).one()
    assert length <= MAX_DOCUMENT_CHARS


def test_bulk_insert_stores_what_sqlalchemy_would(store: Store, project_id: str) -> None:
    """The fast path (COPY / executemany) and SQLAlchemy's insert give rows that read back identically."""
    fast = _part(project_id, "11" * 16, source="sdk", words="same", start=T0)
    slow = _part(project_id, "22" * 16, source="sdk", words="same", start=T0)
    for record in (fast, slow):
        span = record.spans[0]
        span.attributes = {"gen_ai.request.temperature": 0.2, "tags": ["a", "é"], "n": 2**40, "none": None}
        span.id = "aa" * 8 if record is fast else "bb" * 8
        record.span("tool", "no content")  # input, output None; cost None
        record.spans[1].id = "cc" * 8 if record is fast else "dd" * 8
        record.spans[1].started_at = T0
    with store.begin() as conn:
        store_parts(conn, [fast.row()], [s.row() for s in fast.spans])
        conn.execute(traces.insert(), [slow.row()])
        conn.execute(spans.insert(), [s.row() for s in slow.spans])
    with store.connect() as conn:
        rows = {r.id: r._mapping for r in conn.execute(select(spans)).all()}
        raw = {
            r[0]: r[1:]
            for r in conn.exec_driver_sql(
                "SELECT id, input IS NULL, output IS NULL, cost_usd, usage_estimated FROM spans"
            ).all()
        }
    for mine, theirs in (("aa" * 8, "bb" * 8), ("cc" * 8, "dd" * 8)):
        ours, reference = dict(rows[mine]), dict(rows[theirs])
        for key in ("id", "trace_id"):
            ours.pop(key), reference.pop(key)
        assert ours == reference
        assert raw[mine] == raw[theirs]  # JSON null stored as SQLAlchemy stores it, money as pico-dollars


def test_a_repeated_part_is_skipped_and_not_counted_twice(store: Store, sink: StoreSink, project_id: str) -> None:
    trace_id = "fe" * 16
    part = _part(project_id, trace_id, source="otlp", words="again", start=T0)
    sink.write_sync(part)
    sink.write_sync(part)  # a retried export
    with store.connect() as conn:
        row = conn.execute(select(traces).where(traces.c.id == trace_id)).one()
        stored = conn.execute(select(spans.c.id).where(spans.c.trace_id == trace_id)).all()
    assert (row.input_tokens, row.cost_usd, len(stored)) == (10, Decimal("0.001"), 1)


def test_unfit_content_is_named() -> None:
    row: dict[str, object] = dict.fromkeys(span_table.COLUMNS)
    row["attributes"] = {"big": 2**70}
    with pytest.raises(span_table.Unfit, match="attributes"):
        span_table.encode(row)
    deep: list[object] = []
    node = deep
    for _ in range(200):
        child: list[object] = []
        node.append(child)
        node = child
    row["attributes"], row["input"] = {}, deep
    with pytest.raises(span_table.Unfit, match="input: JSON nested deeper"):
        span_table.encode(row)


def test_a_later_part_without_tags_keeps_the_trace_tags(store: Store, sink: StoreSink, project_id: str) -> None:
    trace_id = "c0" * 16
    sdk = _part(project_id, trace_id, source="sdk", words="tagged", start=T0)
    sdk.tags, sdk.session_id = ["beta", "vip"], "s-1"
    sink.write_sync(sdk)
    sink.write_sync(_part(project_id, trace_id, source="http", words="untagged", start=T0 + 1))  # tags None
    with store.connect() as conn:
        row = conn.execute(select(traces).where(traces.c.id == trace_id)).one()
    assert (row.tags, row.session_id, row.name, row.input_tokens) == (["beta", "vip"], "s-1", "sdk", 20)


def test_a_span_without_its_trace_row_is_refused_before_anything_is_written(store: Store, project_id: str) -> None:
    """The spans table has no foreign key to traces (migration 0026): the write path itself refuses a part with a
    span whose trace row is not in it, as the key refused it before, and stores nothing of that part."""
    from sqlalchemy.exc import IntegrityError

    part = _part(project_id, "ab" * 16, source="sdk", words="orphan", start=T0)
    stray = _part(project_id, "ba" * 16, source="sdk", words="stray", start=T0).spans[0]
    with pytest.raises(IntegrityError, match="not part of what was written"), store.begin() as conn:
        store_parts(conn, [part.row()], [s.row() for s in part.spans] + [stray.row()])
    with store.connect() as conn:
        assert conn.execute(select(traces.c.id).where(traces.c.project_id == project_id)).first() is None
        assert conn.execute(select(spans.c.id).where(spans.c.trace_id.in_(["ab" * 16, "ba" * 16]))).first() is None
