"""A trace written in parts (SDK batches, gateway calls joining it) is one trace row: upserted, spans appended,
on SQLite and PostgreSQL; a repeated part changes nothing; an ingested part naming another project's trace is
refused, a gateway call's part is kept under a fresh id."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.tables import spans, traces
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink


@pytest.fixture
def sink(store: Store, tmp_path: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    yield s
    s.close()


def _part(project_id: str, trace_id: str, *, source: str, name: str, start: float, end: float) -> TraceRecord:
    record = TraceRecord(project_id=project_id, name=name, id=trace_id, started_at=start, source=source)  # type: ignore[arg-type]
    record.ended_at = end
    llm = record.span("llm", f"{name} call")
    llm.started_at, llm.ended_at = start, end
    llm.input_tokens, llm.output_tokens, llm.cost_usd = 10, 5, Decimal("0.001")
    return record


def _row(store: Store, trace_id: str) -> dict[str, object]:
    with store.connect() as conn:
        row = conn.execute(select(traces).where(traces.c.id == trace_id)).mappings().one()
        count = conn.execute(select(func.count()).select_from(spans).where(spans.c.trace_id == trace_id)).scalar()
    return {**row, "span_count": count}


def test_parts_merge_into_one_trace(store: Store, sink: StoreSink) -> None:
    with store.begin() as conn:
        project = create_project(conn, "acme").id
    trace_id = "ab" * 16
    gateway = _part(project, trace_id, source="http", name="chat", start=100.0, end=101.0)
    gateway.session_id = "s-1"
    gateway.spans[0].status = "error"
    gateway.status = "error"
    sdk = _part(project, trace_id, source="sdk", name="answer", start=99.5, end=102.0)
    sdk.user_id, sdk.tags = "u-7", ["beta"]
    sink.write_sync(gateway)
    sink.write_sync(sdk)
    row = _row(store, trace_id)
    assert row["started_at"] == 99.5 and row["ended_at"] == 102.0
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"]) == (20, 10, Decimal("0.002"))
    assert row["name"] == "answer" and row["source"] == "sdk"  # the application names its trace
    assert (row["session_id"], row["user_id"], row["tags"]) == ("s-1", "u-7", ["beta"])
    assert row["status"] == "error" and row["span_count"] == 2

    sink.write_sync(sdk)  # the same part again (an SDK retry whose answer was lost): nothing changes
    again = _row(store, trace_id)
    assert (again["input_tokens"], again["cost_usd"], again["span_count"]) == (20, Decimal("0.002"), 2)
    assert sink.written == 3 and sink.spilled == 0


def test_parts_of_one_batch_merge_too(store: Store, sink: StoreSink) -> None:
    """Two parts committed in the same transaction (group commit) still make one row."""
    import asyncio

    with store.begin() as conn:
        project = create_project(conn, "acme").id
    trace_id = "cd" * 16
    first = _part(project, trace_id, source="sdk", name="app", start=1.0, end=2.0)
    second = _part(project, trace_id, source="http", name="chat", start=1.5, end=3.0)

    async def both() -> None:
        await asyncio.gather(sink.write(first), sink.write(second))

    asyncio.run(both())
    row = _row(store, trace_id)
    assert (row["name"], row["started_at"], row["ended_at"], row["input_tokens"]) == ("app", 1.0, 3.0, 20)
    assert row["span_count"] == 2


def test_a_part_naming_another_projects_trace_is_refused(store: Store, sink: StoreSink) -> None:
    with store.begin() as conn:
        mine, theirs = create_project(conn, "mine").id, create_project(conn, "theirs").id
    trace_id = "ef" * 16
    sink.write_sync(_part(theirs, trace_id, source="sdk", name="theirs", start=1.0, end=2.0))
    sink.write_sync(_part(mine, trace_id, source="sdk", name="intruder", start=0.5, end=9.0))
    row = _row(store, trace_id)
    assert (row["project_id"], row["name"], row["started_at"], row["input_tokens"]) == (theirs, "theirs", 1.0, 10)
    assert row["span_count"] == 1


def test_a_gateway_call_joining_another_projects_trace_is_stored_under_a_fresh_id(
    store: Store, sink: StoreSink
) -> None:
    """A `traceparent` naming a trace id another project holds must not cost the call its trace: the part is kept,
    in the caller's project, under a new id; the other project's trace is untouched."""
    with store.begin() as conn:
        mine, theirs = create_project(conn, "mine").id, create_project(conn, "theirs").id
    trace_id = "9a" * 16
    sink.write_sync(_part(theirs, trace_id, source="otlp", name="theirs", start=1.0, end=2.0))
    sink.write_sync(_part(mine, trace_id, source="http", name="chat", start=0.5, end=9.0))
    row = _row(store, trace_id)
    assert (row["project_id"], row["name"], row["span_count"]) == (theirs, "theirs", 1)
    with store.connect() as conn:
        (moved,) = conn.execute(select(traces).where(traces.c.project_id == mine)).mappings().all()
        moved_spans = conn.execute(select(func.count()).select_from(spans).where(spans.c.trace_id == moved["id"]))
        assert moved_spans.scalar() == 1
    assert moved["id"] != trace_id and (moved["name"], moved["input_tokens"]) == ("chat", 10)


def test_a_trace_in_parts_is_one_request_in_the_rollups(store: Store, sink: StoreSink) -> None:
    """Rollups add each part's tokens and cost, but a later part of a trace is not another request."""
    from pilothouse.store.rollups import summarise

    with store.begin() as conn:
        project = create_project(conn, "acme").id
    trace_id = "cd" * 16
    sink.write_sync(_part(project, trace_id, source="http", name="chat", start=100.0, end=101.0))
    sink.write_sync(_part(project, trace_id, source="sdk", name="answer", start=99.5, end=102.0))
    with store.connect() as conn:
        (totals,) = summarise(conn, [project], 60.0, 180.0).values()  # whole minutes: read from the rollups
    assert totals.values["requests"] == 1
    assert (totals.values["input_tokens"], totals.values["output_tokens"], totals.values["llm_calls"]) == (20, 10, 2)
