"""The trace sink: group commit, durable before `write()` returns, atomic traces, spill and replay, close."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, event, func, select, text

from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.tables import spans, traces
from pilothouse.store.traces import get_trace
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.repair import describe_error
from pilothouse.tracing.sink import StoreSink, replay_spill


@pytest.fixture
def project_id(store: Store) -> str:
    with store.begin() as conn:
        return create_project(conn, "acme").id


@pytest.fixture
def spill(tmp_path: Path) -> Path:
    return tmp_path / "data" / "traces-unstored.jsonl"


@pytest.fixture
def sink(store: Store, spill: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=spill)
    yield s
    s.close()


def make_trace(project_id: str, *, n_spans: int = 2, cost: str = "0.000001") -> TraceRecord:
    trace = TraceRecord(project_id=project_id, name="chat", model="gpt-x", user_id="u1", tags=["x"])
    parent: str | None = None
    for i in range(n_spans):
        span = trace.span("llm" if i else "step", f"span-{i}", parent_id=parent)
        parent = parent or span.id
        if i:
            span.input_tokens, span.output_tokens = 3, 2
            span.cost_usd = Decimal(cost)
        span.attributes = {"i": i, "gen_ai.system": "test"}
        span.finish()
    trace.finish()
    return trace


def count(store: Store, table: Any, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with store.connect() as conn:
        return int(conn.execute(query).scalar_one())


def spilled_ids(spill: Path) -> list[str]:
    if not spill.exists():
        return []
    return [orjson.loads(line)["trace"]["id"] for line in spill.read_bytes().splitlines() if line.strip()]


async def test_200_concurrent_writes_all_land_in_few_commits(store: Store, sink: StoreSink, project_id: str) -> None:
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    records = [make_trace(project_id) for _ in range(200)]
    await asyncio.gather(*(sink.write(t) for t in records))
    assert count(store, traces) == 200
    assert count(store, spans) == 400
    assert sink.written == 200 and sink.spilled == 0
    assert len(commits) < 50, f"{len(commits)} commits for 200 traces: the sink did not group-commit"
    with store.connect() as conn:
        stored = set(conn.execute(select(traces.c.id)).scalars())
    assert stored == {t.id for t in records}


async def test_each_write_resolves_after_its_row_is_committed(store: Store, sink: StoreSink, project_id: str) -> None:
    async def write_then_read(trace: TraceRecord) -> None:
        await sink.write(trace)
        # No await in between: a fresh connection must already see the trace and all its spans.
        with store.connect() as conn:
            got = get_trace(conn, project_id, trace.id)
        assert got is not None, f"trace {trace.id} not readable right after write() returned"
        assert [s["id"] for s in got["spans"]] == [s.id for s in trace.spans]

    await asyncio.gather(*(write_then_read(make_trace(project_id, n_spans=3)) for _ in range(40)))
    for _ in range(5):
        await write_then_read(make_trace(project_id))


def test_write_sync_blocks_until_committed(store: Store, sink: StoreSink, project_id: str) -> None:
    trace = make_trace(project_id)
    sink.write_sync(trace)
    with store.connect() as conn:
        assert get_trace(conn, project_id, trace.id) is not None


async def test_trace_and_spans_commit_together(store: Store, sink: StoreSink, spill: Path, project_id: str) -> None:
    first = make_trace(project_id)
    await sink.write(first)
    # The trace row itself is fine, but its span reuses an id that is already stored: the span insert fails.
    clash = make_trace(project_id)
    clash.spans[1].id = first.spans[1].id
    await sink.write(clash)
    assert count(store, traces, id=clash.id) == 0, "a trace was stored without its spans"
    assert count(store, spans, trace_id=clash.id) == 0
    assert count(store, traces) == 1 and count(store, spans) == 2
    assert spilled_ids(spill) == [clash.id]
    assert sink.spilled == 1 and sink.written == 1

    line = orjson.loads(spill.read_bytes().splitlines()[0])
    assert [s["id"] for s in line["spans"]] == [s.id for s in clash.spans]
    assert Decimal(line["spans"][1]["cost_usd"]) == Decimal("0.000001")


async def test_one_bad_trace_does_not_spill_its_batch(
    store: Store, sink: StoreSink, spill: Path, project_id: str
) -> None:
    bad = make_trace(project_id, n_spans=3)
    bad.spans[2].id = bad.spans[1].id  # duplicate span id inside one trace
    good = [make_trace(project_id) for _ in range(20)]
    await asyncio.gather(*(sink.write(t) for t in [*good[:10], bad, *good[10:]]))
    assert count(store, traces) == 20
    assert count(store, traces, id=bad.id) == 0 and count(store, spans, trace_id=bad.id) == 0
    assert spilled_ids(spill) == [bad.id]


@pytest.fixture
def down_store(tmp_path: Path) -> Iterator[Store]:
    """A store whose database cannot be opened (its directory does not exist)."""
    st = Store(create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"))
    yield st
    st.dispose()


async def test_spill_when_the_database_is_down_then_replay(
    store: Store, down_store: Store, spill: Path, project_id: str
) -> None:
    records = [make_trace(project_id, n_spans=i % 3, cost="0.000000123456") for i in range(6)]
    down = StoreSink(down_store, spill_path=spill, retries=2)
    try:
        await asyncio.gather(*(down.write(t) for t in records))  # resolves even though nothing was stored
    finally:
        down.close()
    assert down.written == 0 and down.spilled == 6
    assert sorted(spilled_ids(spill)) == sorted(t.id for t in records)

    assert replay_spill(store, spill) == 6
    assert not spill.exists()
    renamed = list(spill.parent.glob("traces-unstored.replayed-*"))
    assert len(renamed) == 1
    assert replay_spill(store, spill) == 0
    assert count(store, traces) == 6
    with store.connect() as conn:
        for t in records:
            got = get_trace(conn, project_id, t.id)
            assert got is not None
            assert got["started_at"] == t.started_at and got["ended_at"] == t.ended_at
            assert got["tags"] == ["x"] and got["user_id"] == "u1"
            assert Decimal(got["cost_usd"]) == t.totals()[2]
            assert [s["id"] for s in got["spans"]] == [s.id for s in t.spans]
            for row, span in zip(got["spans"], t.spans, strict=True):
                assert row["attributes"] == span.attributes
                assert row["parent_id"] == span.parent_id
                assert row["cost_usd"] == (None if span.cost_usd is None else "0.000000123456")


async def test_replay_skips_traces_already_stored(store: Store, sink: StoreSink, spill: Path, project_id: str) -> None:
    kept = make_trace(project_id)
    await sink.write(kept)
    fresh = make_trace(project_id)
    lines = []
    for t in (kept, fresh):
        trace_row = {**t.row(), "cost_usd": str(t.row()["cost_usd"])}
        span_rows = [{**s.row(), "cost_usd": None if s.cost_usd is None else str(s.cost_usd)} for s in t.spans]
        lines.append(orjson.dumps({"trace": trace_row, "spans": span_rows}))
    spill.parent.mkdir(parents=True)
    spill.write_bytes(b"\n".join(lines) + b"\n\n")
    assert replay_spill(store, spill) == 1
    assert count(store, traces) == 2 and count(store, spans) == 4
    assert not spill.exists()


async def test_close_flushes_pending_writes(store: Store, spill: Path, project_id: str) -> None:
    sink = StoreSink(store, spill_path=spill, batch_max=7)
    records = [make_trace(project_id) for _ in range(60)]
    tasks = [asyncio.create_task(sink.write(t)) for t in records]
    await asyncio.sleep(0)  # every task has queued its trace and now waits for the writer
    sink.close()
    assert count(store, traces) == 60
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    sink.close()  # a second close is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await sink.write(make_trace(project_id))
    with pytest.raises(RuntimeError, match="closed"):
        sink.write_sync(make_trace(project_id))


async def test_writer_survives_an_unwritable_spill_file(
    store: Store, down_store: Store, tmp_path: Path, project_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Database down and spill impossible: the trace is lost (and logged), but no request hangs."""
    (tmp_path / "a-file").write_text("not a directory")
    sink = StoreSink(down_store, spill_path=tmp_path / "a-file" / "spill.jsonl", retries=1)
    try:
        await asyncio.wait_for(sink.write(make_trace(project_id)), timeout=10)
        await asyncio.wait_for(sink.write(make_trace(project_id)), timeout=10)
    finally:
        sink.close()
    assert sink.written == 0 and sink.spilled == 0
    assert "they are lost" in caplog.text


# -- poison traces: one bad trace may only affect itself ---------------------------------------------------------


def nested(depth: int, leaf: Any = "leaf") -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


class Opaque:
    """A value no JSON encoder knows."""

    def __repr__(self) -> str:
        return "Opaque()"


def poison_traces(project_id: str) -> dict[str, TraceRecord]:
    """Traces that break a backend or orjson in different ways (as an upstream or a bug could produce them)."""

    def trace(name: str) -> TraceRecord:
        t = make_trace(project_id)
        t.name = f"poison-{name}"
        return t

    poisons = {name: trace(name) for name in ("deep-input", "deep-attributes", "opaque", "numbers", "text", "tokens")}
    poisons["deep-input"].spans[1].input = {"messages": [{"role": "user", "content": nested(1000)}]}
    poisons["deep-attributes"].spans[0].attributes["deep"] = nested(300)
    poisons["opaque"].spans[1].output = {"obj": Opaque(), "set": {1, 2}, (1, 2): "tuple key", "blob": b"\x00\xff"}
    poisons["numbers"].spans[1].attributes.update({"big": 2**70, "nan": float("nan"), "inf": float("-inf")})
    text = poisons["text"]
    text.user_id, text.session_id = "u\x00" + "x" * 300, "s" * 500  # NUL, and longer than the 200-char columns
    text.spans[1].input = {"text": "nul \x00 and a lone surrogate \ud800"}
    text.spans[1].error = "err\x00"
    poisons["tokens"].spans[1].input_tokens = 2**40  # past a 32-bit column
    return poisons


@contextmanager
def writer_held(store: Store) -> Iterator[None]:
    """Hold the trace tables' write lock, so the sink's writer waits and the queue fills into one big batch."""
    with store.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("LOCK TABLE traces IN EXCLUSIVE MODE"))
        yield


async def test_poison_traces_never_lose_the_good_ones(
    store: Store, spill: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Poison traces amid good ones of three projects, all in one batch: every good trace is stored, and each
    poison trace is stored (with its odd content capped) or spilled: none is lost, and nothing hangs."""
    with store.begin() as conn:
        projects = [create_project(conn, name).id for name in ("alpha", "beta", "gamma")]
    good = [make_trace(projects[i % 3]) for i in range(45)]
    poisons = poison_traces(projects[0])
    mixed: list[TraceRecord] = []
    for i, poison in enumerate(poisons.values()):
        mixed += [*good[i * 7 : (i + 1) * 7], poison]
    mixed += good[len(poisons) * 7 :]

    sink = StoreSink(store, spill_path=spill)
    batches: list[int] = []  # traces per insert into the traces table

    def on_execute(_conn: Any, statement: Any, multiparams: Any, params: Any, _options: Any) -> None:
        if getattr(statement, "table", None) is traces:  # rows, or (PostgreSQL) one JSON array of them
            batches.append(len(multiparams) or len(orjson.loads((params or {}).get("t_rows") or "[]")))

    def on_driver_sql(*args: Any) -> None:  # SQLite's insert goes to the driver: one VALUES list of the rows
        statement = args[2]
        if statement.startswith("INSERT INTO traces "):
            batches.append(statement.count("(?"))

    event.listen(store.engine, "before_execute", on_execute)
    event.listen(store.engine, "before_cursor_execute", on_driver_sql)
    try:
        first = asyncio.create_task(sink.write(make_trace(projects[1])))
        with writer_held(store):
            await asyncio.sleep(0.3)  # the writer took `first` and waits on the lock
            tasks = [asyncio.create_task(sink.write(t)) for t in mixed]
            await asyncio.sleep(0.1)  # every trace is queued behind it
        await asyncio.wait_for(asyncio.gather(first, *tasks), timeout=60)
    finally:
        sink.close()

    with store.connect() as conn:
        for t in good:
            got = get_trace(conn, t.project_id, t.id)
            assert got is not None, f"good trace {t.id} of project {t.project_id} was lost"
            assert [s["id"] for s in got["spans"]] == [s.id for s in t.spans]
            assert all("pilothouse.trace.repaired" not in s["attributes"] for s in got["spans"])
        stored = {name: get_trace(conn, projects[0], p.id) for name, p in poisons.items()}
    spilled = set(spilled_ids(spill))
    for name, poison in poisons.items():
        got = stored[name]
        assert got is not None or poison.id in spilled, f"poison trace {name} was neither stored nor spilled"
        if got is not None:
            orjson.dumps(got)  # what the API would send back
            assert got["name"] == f"poison-{name}"
    assert stored["deep-input"] is not None, "a deep trace is stored with its content capped, not dropped"
    deep_span = stored["deep-input"]["spans"][1]
    assert "nested deeper than" in orjson.dumps(deep_span["input"]).decode()
    assert deep_span["attributes"]["pilothouse.trace.repaired"].startswith("input:")
    assert deep_span["attributes"]["i"] == 1, "a repaired span keeps its other attributes"
    assert sink.lost == 0 and "lost" not in caplog.text
    assert sink.written + sink.spilled == len(mixed) + 1
    assert max(batches) == len(mixed), f"the traces were not written in one batch: {batches}"


async def test_poison_traces_spill_and_replay_when_the_database_is_down(
    store: Store, down_store: Store, spill: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the database down every trace is spilled, poison ones too (orjson cannot write them as they are);
    the replay stores them all, and keeps aside, without failing, a line it cannot read."""
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
    poisons = poison_traces(project_id)
    good = [make_trace(project_id) for _ in range(4)]
    down = StoreSink(down_store, spill_path=spill, retries=1)
    try:
        await asyncio.wait_for(asyncio.gather(*(down.write(t) for t in [*good, *poisons.values()])), timeout=30)
    finally:
        down.close()
    assert down.lost == 0 and down.spilled == len(good) + len(poisons)
    assert sorted(spilled_ids(spill)) == sorted(t.id for t in [*good, *poisons.values()])

    with spill.open("ab") as fh:
        fh.write(b'{"trace": {"id": "torn-by-a-crash", "proj')  # an unfinished last line
    assert replay_spill(store, spill) == len(good) + len(poisons)
    with store.connect() as conn:
        for t in [*good, *poisons.values()]:
            got = get_trace(conn, project_id, t.id)
            assert got is not None, f"spilled trace {t.name} was not replayed"
            orjson.dumps(got)
    rejected = list(spill.parent.glob("traces-unstored.rejected-*"))
    assert len(rejected) == 1 and b"torn-by-a-crash" in rejected[0].read_bytes()
    assert "kept aside" in caplog.text


def test_describe_error_never_raises() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RecursionError("maximum recursion depth exceeded")

    assert describe_error(Unprintable()) == "Unprintable"
    assert describe_error(ValueError("x" * 1000)).endswith("...")
    assert len(describe_error(ValueError("x" * 1000))) < 320
