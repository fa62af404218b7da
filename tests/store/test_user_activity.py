"""One end user's counters (store/user_activity.py) on SQLite and PostgreSQL: compared with sums over the rows the
test wrote, with the rollups for a project whose traces are all one user's, and EXPLAIN shows the user index."""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text

import pilothouse.store.user_activity as user_activity_module
from pilothouse.money import to_pico
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.rollup_reads import grouped_counters
from pilothouse.store.rollups import CACHE_SAVED_ATTR, LATENCY_BOUNDS_MS
from pilothouse.store.user_activity import user_activity, user_conditions
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

T0 = 1_750_003_200.0  # a whole hour
LATENCIES = [0.01, 0.03, 0.2, 0.7, 1.5, 4.0, 12.0, 70.0, 0.05]  # seconds: every histogram bucket, and a bound


def _record(rng: random.Random, project_id: str, user: str | None, i: int) -> TraceRecord:
    t = TraceRecord(
        project_id=project_id,
        name="chat",
        user_id=user,
        started_at=T0 + rng.random() * 3 * 3600,
        model=rng.choice(["m1", "m2"]),
        api_key_id=rng.choice(["k1", "k2"]),
        prompt_name=rng.choice([None, "greeter"]),
    )
    llm = t.span("llm", "chat")
    llm.started_at = t.started_at
    llm.input_tokens, llm.output_tokens = rng.randint(1, 500), rng.randint(1, 200)
    llm.cost_usd = Decimal(rng.choice(["0.001", "0.0025", "0.3"]))
    llm.finish(status="error" if i % 5 == 0 else "ok")
    if i % 3 == 0:
        cache = t.span("cache", "lookup")
        cache.attributes = {CACHE_SAVED_ATTR: "0.004"}
        cache.finish()
    if i % 4 == 0:
        guard = t.span("guard", "pii")
        guard.attributes = {"pilothouse.guard.decision": "block" if i % 8 == 0 else "allow"}
        guard.finish()
    t.finish()
    t.ended_at = t.started_at + LATENCIES[i % len(LATENCIES)]
    return t


@pytest.fixture
def written(store: Store, tmp_path: Path) -> tuple[str, str, list[TraceRecord]]:
    rng = random.Random(11)
    with store.begin() as conn:
        shop = create_project(conn, "shop").id
        solo = create_project(conn, "solo").id
    records = [_record(rng, shop, rng.choice(["alice", "bob", None]), i) for i in range(150)]
    records += [_record(rng, solo, "alice", i) for i in range(60)]
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        for record in records:
            sink.write_sync(record)
    finally:
        sink.close()
    return shop, solo, records


def _bucket(ms: float) -> int:
    return next((i for i, bound in enumerate(LATENCY_BOUNDS_MS) if ms <= bound), len(LATENCY_BOUNDS_MS))


def _expected(records: Iterable[TraceRecord]) -> dict[str, float]:
    out: dict[str, float] = {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_pico": 0}
    out |= {"latency_count": 0, "latency_sum_ms": 0.0, "cache_hits": 0, "cache_saved_pico": 0, "guard_blocks": 0}
    out |= {f"lat_{i:02d}": 0 for i in range(len(LATENCY_BOUNDS_MS) + 1)}
    for t in records:
        tin, tout, cost = t.totals()
        out["requests"] += 1
        out["errors"] += t.status == "error"
        out["input_tokens"] += tin
        out["output_tokens"] += tout
        out["cost_pico"] += to_pico(cost)
        if t.status == "ok" and t.ended_at is not None:
            ms = (t.ended_at - t.started_at) * 1000.0
            out["latency_count"] += 1
            out["latency_sum_ms"] += ms
            out[f"lat_{_bucket(ms):02d}"] += 1
        for s in t.spans:
            if s.kind == "cache":
                out["cache_hits"] += 1
                out["cache_saved_pico"] += to_pico(Decimal("0.004"))
            if s.kind == "guard" and s.attributes["pilothouse.guard.decision"] == "block":
                out["guard_blocks"] += 1
    return out


def _same(got: dict[str, float], want: dict[str, float]) -> None:
    for name, value in want.items():
        assert got[name] == pytest.approx(value), name


def test_one_users_counters_match_the_rows_written(store: Store, written: tuple[str, str, list[TraceRecord]]) -> None:
    shop, _, records = written
    since, until = T0 + 1800, T0 + 3 * 3600 - 600
    mine = [t for t in records if t.project_id == shop and t.user_id == "alice" and since <= t.started_at < until]
    assert len(mine) > 20 and any(t.status == "error" for t in mine)
    with store.connect() as conn:
        whole = user_activity(conn, [shop], "alice", since, until)
        hourly = user_activity(conn, [shop], "alice", since, until, period_s=3600)
        only = user_activity(conn, [shop], "alice", since, until, model="m1", api_key_id="k2", prompt_name="greeter")
        nobody = user_activity(conn, [shop], "carol", since, until)
    assert list(whole.periods) == [None] and whole.spans_counted
    _same(whole.total().values, _expected(mine))
    assert sorted(p or 0.0 for p in hourly.periods) == [T0, T0 + 3600, T0 + 7200]
    for start, counters in hourly.periods.items():
        assert start is not None
        _same(counters.values, _expected(t for t in mine if start <= t.started_at < start + 3600))
    picked = [t for t in mine if t.model == "m1" and t.api_key_id == "k2" and t.prompt_name == "greeter"]
    assert picked
    _same(only.total().values, _expected(picked))
    assert nobody.periods == {} and nobody.total().values["requests"] == 0


def test_all_projects_and_the_rollups_agree(store: Store, written: tuple[str, str, list[TraceRecord]]) -> None:
    _, solo, records = written
    since, until = T0, T0 + 4 * 3600
    with store.connect() as conn:
        everywhere = user_activity(conn, None, "alice", since, until).total().values
        alone = user_activity(conn, [solo], "alice", since, until, period_s=3600)
        rolled = grouped_counters(conn, [solo], since, until, period_s=3600)
    _same(everywhere, _expected(t for t in records if t.user_id == "alice"))
    # every trace of `solo` is alice's: her counters are the project's rollups, histogram included
    assert {k[0] for k in rolled} == set(alone.periods)
    for (period, *_), counters in rolled.items():
        mine = alone.periods[period].values
        for name in _expected([]):
            assert mine[name] == pytest.approx(counters.values[name]), (period, name)
        assert alone.periods[period].latency_percentile(95) == counters.latency_percentile(95)


def test_spans_are_not_read_for_a_very_busy_user(
    store: Store, written: tuple[str, str, list[TraceRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, solo, _ = written
    monkeypatch.setattr(user_activity_module, "SPAN_READ_MAX", 10)
    with store.connect() as conn:
        busy = user_activity(conn, [solo], "alice", T0, T0 + 4 * 3600)
    assert not busy.spans_counted
    assert busy.total().values["requests"] == 60 and busy.total().values["cache_hits"] == 0


def _plan(conn: Connection, shop: str) -> str:
    where = user_conditions(conn, [shop], "alice", T0, T0 + 3600)
    query = select(*user_activity_module._sums()).where(*where)
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE traces"))
        conn.execute(text("SET enable_seqscan = off"))  # a test-sized table is cheapest to scan whole
        return "\n".join(conn.execute(text(f"EXPLAIN {compiled}")).scalars())
    return "\n".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


def test_the_read_is_driven_by_the_user_index(store: Store, written: tuple[str, str, list[TraceRecord]]) -> None:
    shop, _, _ = written
    with store.connect() as conn:
        plan = _plan(conn, shop)
    print(plan)
    assert "ix_traces_project_user_started" in plan, plan
    assert "SCAN traces" not in plan and "Seq Scan" not in plan, plan
