"""Query at scale on SQLite and PostgreSQL: rollups kept by the sink equal the rows (and a rebuild), full-text
search finds kept content and forgets purged content, every list filter, and content capture per project."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, func, select

from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project, set_content_capture
from pilothouse.store.retention import purge_content
from pilothouse.store.rollups import rebuild, summarise
from pilothouse.store.scores import add_score
from pilothouse.store.search import EmptyQuery
from pilothouse.store.tables import spans, trace_rollups, traces
from pilothouse.store.traces import BadFilter, ScoreFilter, TraceFilter, list_traces
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

T0 = 1_750_000_000.0  # a whole hour? no: 1_750_000_000 % 3600 == 800, so windows have ragged edges


@pytest.fixture
def project(store: Store) -> str:
    with store.begin() as conn:
        return create_project(conn, "acme").id


@pytest.fixture
def sink(store: Store, tmp_path: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    yield s
    s.close()


def make_trace(
    project: str,
    started: float,
    *,
    text: str = "hello",
    model: str = "m1",
    status: str = "ok",
    ms: float = 120.0,
    cost: str = "0.001",
    tags: list[str] | None = None,
    version: int | None = None,
) -> TraceRecord:
    t = TraceRecord(project_id=project, name="chat", started_at=started, model=model, tags=tags)
    t.prompt_name, t.prompt_version = ("greet", version) if version is not None else (None, None)
    llm = t.span("llm", "chat")
    llm.started_at, llm.model, llm.input_tokens, llm.output_tokens = started, model, 10, 5
    llm.cost_usd, llm.latency_ms, llm.ttft_ms, llm.ended_at = Decimal(cost), ms, ms / 4, started + ms / 1000
    llm.input = {"messages": [{"role": "user", "content": text}]}
    llm.output = {"message": {"role": "assistant", "content": f"answer to {text}"}}
    llm.status = "error" if status == "error" else "ok"
    t.ended_at = started + ms / 1000
    t.status = "error" if status == "error" else "ok"
    return t


def rollup_rows(conn: Connection) -> list[tuple[object, ...]]:
    """Every rollup row, floats rounded (sums in another order differ in the last bits)."""
    rows = [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in conn.execute(select(trace_rollups))]
    return sorted(rows)


def test_rollups_equal_the_rows_and_a_rebuild(store: Store, project: str, sink: StoreSink) -> None:
    rng = random.Random(7)
    for i in range(300):
        started = T0 + rng.uniform(0, 3 * 3600)
        sink.write_sync(
            make_trace(
                project,
                started,
                model=rng.choice(["m1", "m2"]),
                status="error" if i % 10 == 0 else "ok",
                ms=rng.uniform(10, 3000),
                version=rng.choice([1, 2]),
            )
        )
    since, until = T0 + 1234.5, T0 + 3 * 3600 - 77.25  # edges inside minutes and hours
    with store.connect() as conn:
        rolled = summarise(conn, [project], since, until, by="model")
        window = (traces.c.started_at >= since) & (traces.c.started_at < until)
        for model in ("m1", "m2"):
            count, errors, pico = conn.execute(
                select(
                    func.count(),
                    func.sum((traces.c.status == "error").cast(type_=traces.c.input_tokens.type)),
                    func.sum(traces.c.cost_usd),
                ).where(window, traces.c.model == model)
            ).one()
            got = rolled[model].to_dict()
            assert got["requests"] == count
            assert got["errors"] == errors
            assert Decimal(got["cost_usd"]) == Decimal(pico)
            assert got["llm_calls"] == count
        by_version = summarise(conn, [project], since, until, by="version")
        assert sum(c.to_dict()["requests"] for c in by_version.values()) == sum(
            c.to_dict()["requests"] for c in rolled.values()
        )
        before = rollup_rows(conn)
    with store.begin() as conn:
        conn.execute(delete(trace_rollups))
    assert rebuild(store) == 300
    with store.connect() as conn:
        assert rollup_rows(conn) == before


def test_latency_percentiles_come_from_the_histogram(store: Store, project: str, sink: StoreSink) -> None:
    for i in range(100):
        sink.write_sync(make_trace(project, T0 + i, ms=80.0 if i < 90 else 4000.0))
    with store.connect() as conn:
        (total,) = summarise(conn, [project], T0 - 3600, T0 + 7200).values()
    latency = total.to_dict()["latency_ms"]
    assert 50 < latency["p50"] <= 100  # the 50-100 ms bucket
    assert 2500 < latency["p95"] <= 5000
    assert latency["mean"] == pytest.approx((90 * 80 + 10 * 4000) / 100, rel=1e-6)


def test_full_text_search_finds_kept_content_and_forgets_purged(store: Store, project: str, sink: StoreSink) -> None:
    old = make_trace(project, T0, text="the purple elephant dances")
    new = make_trace(project, T0 + 86_400 * 40, text="a purple tiger sleeps")
    for t in (old, new):
        sink.write_sync(t)

    def found(q: str) -> list[str]:
        with store.connect() as conn:
            page, _ = list_traces(conn, TraceFilter(project_id=project, q=q))
        return [t["id"] for t in page]

    assert found("purple") == [new.id, old.id]
    assert found("Purple ELEPHANT") == [old.id]
    assert found("purple giraffe") == []
    assert found('elephant" OR "tiger') == []  # quotes and operators are words, not query syntax
    assert found("answer to tiger") == [new.id]  # the output is indexed too
    with pytest.raises(EmptyQuery):
        found("  ?! ")
    purge_content(store, older_than_s=30 * 86_400, now=T0 + 86_400 * 41)
    assert found("elephant") == []
    assert found("purple") == [new.id]


def test_every_list_filter(store: Store, project: str, sink: StoreSink) -> None:
    cheap = make_trace(project, T0, cost="0.0001", ms=50, tags=["beta", "eu"], version=1)
    dear = make_trace(project, T0 + 1, cost="0.5", ms=5000, tags=["eu"], version=2, model="m2")
    failed = make_trace(project, T0 + 2, status="error", version=2)
    for t in (cheap, dear, failed):
        sink.write_sync(t)
    with store.begin() as conn:
        add_score(conn, project_id=project, trace_id=dear.id, name="groundedness", value=0.2, source="judge")
        add_score(conn, project_id=project, trace_id=cheap.id, name="groundedness", value=0.9, source="judge")

    def ids(**kw: object) -> set[str]:
        with store.connect() as conn:
            page, _ = list_traces(conn, TraceFilter(project_id=project, **kw))  # type: ignore[arg-type]
        return {t["id"] for t in page}

    assert ids(tag="eu") == {cheap.id, dear.id}
    assert ids(tag="beta") == {cheap.id}
    assert ids(cost_min=Decimal("0.01")) == {dear.id}
    assert ids(cost_max=Decimal("0.01")) == {cheap.id, failed.id}
    assert ids(latency_min_ms=1000.0) == {dear.id}
    assert ids(latency_max_ms=100.0) == {cheap.id}
    assert ids(prompt_name="greet", prompt_version=2) == {dear.id, failed.id}
    assert ids(status="error") == {failed.id}
    assert ids(model="m2") == {dear.id}
    assert ids(score=ScoreFilter.parse("groundedness<0.5")) == {dear.id}
    assert ids(score=ScoreFilter.parse("groundedness >= 0.5")) == {cheap.id}
    assert ids(tag="eu", q="hello", cost_min=Decimal("0.1")) == {dear.id}
    with pytest.raises(BadFilter):
        ScoreFilter.parse("groundedness ~ high")


@pytest.mark.parametrize("mode", ["off", "redacted", "full"])
def test_content_capture_per_project(store: Store, project: str, sink: StoreSink, mode: str) -> None:
    with store.begin() as conn:
        set_content_capture(conn, project, mode)
    t = make_trace(project, T0, text="mail me at jane.doe@example.com about the zebra")
    t.spans[0].attributes["pilothouse.cache.matched_text"] = "jane.doe@example.com zebra"
    sink.write_sync(t)
    with store.connect() as conn:
        row = conn.execute(select(spans).where(spans.c.trace_id == t.id)).one()
        found, _ = list_traces(conn, TraceFilter(project_id=project, q="zebra"))
    assert row.input_tokens == 10 and row.cost_usd == Decimal("0.001")  # the numbers stay in every mode
    stored = str(row.input) + str(row.output) + str(row.attributes)
    if mode == "off":
        assert row.input is None and row.output is None and "zebra" not in stored and found == []
    else:
        assert "zebra" in stored and [x["id"] for x in found] == [t.id]
        assert ("jane.doe@example.com" in stored) is (mode == "full")
