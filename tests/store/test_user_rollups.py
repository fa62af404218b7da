"""Per-user rollups (store/user_rollups.py) on SQLite and PostgreSQL: `summarise_user` equals `user_activity` (the
user's rows) over every window, period and filter; the sink's counts equal a rebuild and migration 0025's backfill;
the read is driven by the table's key; traces without a user add nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, delete, event, func, select, text

import pilothouse.store.user_activity as user_activity_module
from pilothouse.store.engine import Store
from pilothouse.store.migrate import alembic_config
from pilothouse.store.projects import create_project
from pilothouse.store.rollups import CACHE_SAVED_ATTR, rebuild
from pilothouse.store.tables import user_rollups
from pilothouse.store.user_activity import UserActivity, user_activity
from pilothouse.store.user_rollups import READ_COUNTERS, summarise_user
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

T0 = 1_750_032_000.0  # a UTC midnight
DAY, HOUR = 86_400, 3600
SPAN = 3 * DAY
LATENCIES = [0.01, 0.03, 0.2, 0.7, 1.5, 4.0, 12.0, 70.0, 0.05]  # seconds: every histogram bucket, and a bound


def _record(rng: random.Random, project_id: str, user: str | None, i: int) -> TraceRecord:
    t = TraceRecord(
        project_id=project_id,
        name="chat",
        user_id=user,
        started_at=T0 + rng.random() * SPAN,
        model=rng.choice(["m1", "m2"]),
        api_key_id=rng.choice(["k1", "k2"]),
        prompt_name=rng.choice([None, "greeter"]),
        source="sdk",
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


def _later_part(first: TraceRecord, i: int) -> TraceRecord:
    """A gateway call joining `first` (same user, inside its time): more tokens, cost and spans, not a request."""
    part = TraceRecord(
        project_id=first.project_id,
        name="chat",
        id=first.id,
        user_id=first.user_id,
        started_at=first.started_at,
        model=first.model,
        api_key_id=first.api_key_id,
        prompt_name=first.prompt_name,
        source="http",
    )
    llm = part.span("llm", "chat")
    llm.started_at = first.started_at
    llm.input_tokens, llm.output_tokens, llm.cost_usd = 7 + i, 3, Decimal("0.02")
    llm.finish()
    cache = part.span("cache", "lookup")
    cache.attributes = {CACHE_SAVED_ATTR: "0.5"}
    cache.finish()
    part.finish()
    part.ended_at = first.ended_at
    return part


@pytest.fixture
def written(store: Store, tmp_path: Path) -> Iterator[tuple[str, str]]:
    rng = random.Random(17)
    with store.begin() as conn:
        shop = create_project(conn, "shop").id
        solo = create_project(conn, "solo").id
    records = [_record(rng, shop, rng.choice(["alice", "bob", None, ""]), i) for i in range(400)]
    records += [_record(rng, solo, "alice", i) for i in range(80)]
    mine = [t for t in records if t.user_id == "alice" and t.status == "ok"]
    later = [_later_part(t, i) for i, t in enumerate(mine[::4])]
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        for record in [*records, *later]:
            sink.write_sync(record)
    finally:
        sink.close()
    assert sink.spilled == 0
    yield shop, solo


def _same(got: UserActivity, want: UserActivity, context: Any) -> None:
    assert got.spans_counted == want.spans_counted, context
    assert set(got.periods) == set(want.periods), context
    for period, counters in want.periods.items():
        for name in READ_COUNTERS:
            assert got.periods[period].values[name] == pytest.approx(counters.values[name]), (context, period, name)
    assert got.total().latency_percentile(95) == pytest.approx(want.total().latency_percentile(95)), context


WINDOWS = [
    (T0, T0 + SPAN),  # whole days
    (T0 + 1234.5, T0 + SPAN - 777.0),  # partial hours at both edges
    (T0 + 5 * HOUR + 60, T0 + 2 * DAY + 7 * HOUR + 59.5),
    (T0 + DAY + 600, T0 + DAY + 3000),  # under an hour: all from rows
    (T0 + 3 * HOUR, T0 + 9 * HOUR),  # whole hours, no whole day
    (T0 - DAY, T0 + SPAN + DAY),  # past the data at both ends
]


def test_the_rollups_equal_the_rows(store: Store, written: tuple[str, str]) -> None:
    shop, solo = written
    filters: list[dict[str, Any]] = [
        {},
        {"model": "m1"},
        {"prompt_name": "greeter", "api_key_id": "k2"},
        {"model": "m2", "api_key_id": "k1"},
    ]
    cases = [(p, w, projects) for p in (None, HOUR, DAY) for w in WINDOWS for projects in ([shop], [solo], None)]
    cases += [(p, w, [shop]) for p in (6 * HOUR, 1800) for w in WINDOWS[:3]]  # 1800: not whole hours, all rows
    with store.connect() as conn:
        for period_s, (since, until), projects in cases:
            for user in ("alice", "bob", "carol"):
                for picked in filters:
                    args = (conn, projects, user, since, until)
                    want = user_activity(*args, period_s=period_s, **picked)
                    got = summarise_user(*args, period_s=period_s, **picked)
                    _same(got, want, (period_s, since - T0, until - T0, projects, user, picked))
        everything = summarise_user(conn, None, "alice", T0, T0 + SPAN).total().values
    assert everything["requests"] > 100 and everything["errors"] > 0 and everything["cache_hits"] > 0
    assert everything["guard_blocks"] > 0 and everything["latency_count"] > 0


def test_later_parts_add_tokens_not_requests(store: Store, written: tuple[str, str]) -> None:
    _, solo = written
    with store.connect() as conn:
        requests = conn.execute(
            select(func.sum(user_rollups.c.requests)).where(
                user_rollups.c.project_id == solo, user_rollups.c.bucket_s == HOUR
            )
        ).scalar()
        rolled = summarise_user(conn, [solo], "alice", T0, T0 + SPAN, period_s=DAY).total().values
    assert requests == 80 and rolled["requests"] == 80
    base = sum(1 for i in range(80) if i % 3 == 0)
    assert rolled["cache_hits"] > base  # the later parts' cache spans


def test_a_rebuild_recounts_what_the_sink_counted(store: Store, written: tuple[str, str]) -> None:
    before = _table(store)
    assert before and all(key[1] in ("alice", "bob") for key in before)  # no row for no user, nor for ""
    with store.begin() as conn:
        conn.execute(delete(user_rollups))
    rebuild(store)
    _same_table(_table(store), before)
    with store.begin() as conn:  # a window rebuild leaves the rest alone
        conn.execute(delete(user_rollups).where(user_rollups.c.bucket_start >= T0 + DAY))
    rebuild(store, since=T0 + DAY + 5, until=T0 + 2 * DAY - 5)  # widened to whole days
    assert {k for k in _table(store) if k[3] >= T0 + 2 * DAY} == set()
    _same_table(
        {k: v for k, v in _table(store).items() if k[3] < T0 + 2 * DAY},
        {k: v for k, v in before.items() if k[3] < T0 + 2 * DAY},
    )


def test_migration_0025_counts_the_traces_stored_before_it(
    store: Store, written: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _table(store)
    cfg = alembic_config(store.engine)
    command.downgrade(cfg, "0024_ui_sessions")
    with store.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT * FROM alembic_version"))}
    assert tables == {"0024_ui_sessions"}
    command.upgrade(cfg, "head")
    _same_table(_table(store), before)
    # small pages and flushes: a bucket's counts added up across several writes
    migration = ScriptDirectory.from_config(cfg).get_revision("0025_user_rollups")
    assert migration is not None
    monkeypatch.setattr(migration.module, "CHUNK", 7)
    monkeypatch.setattr(migration.module, "FLUSH_AT", 10)
    with store.begin() as conn:
        conn.execute(delete(user_rollups))
        migration.module._backfill(conn)
    _same_table(_table(store), before)


def test_busy_edges_are_not_guessed(store: Store, written: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache hits and guard blocks of whole hours come from the rollups at any volume; only an edge read from rows
    with more than SPAN_READ_MAX requests leaves them unknown."""
    _, solo = written
    monkeypatch.setattr(user_activity_module, "SPAN_READ_MAX", 0)
    since, until = T0 + 1234.5, T0 + SPAN - 777.0
    with store.connect() as conn:
        days = summarise_user(conn, [solo], "alice", T0, T0 + SPAN)
        from_rows = user_activity(conn, [solo], "alice", T0, T0 + SPAN)
        edged = summarise_user(conn, [solo], "alice", since, until)
        left = user_activity(conn, [solo], "alice", since, T0 + HOUR).total().values["requests"]
        right = user_activity(conn, [solo], "alice", T0 + SPAN - HOUR, until).total().values["requests"]
    assert days.spans_counted and days.total().values["cache_hits"] > 0
    assert not from_rows.spans_counted and from_rows.total().values["cache_hits"] == 0
    assert edged.spans_counted == (left + right == 0)


def _plan(conn: Connection, shop: str) -> str:
    """The query plan of the statement `summarise_user` reads the user rollups with (caught as it runs)."""
    caught: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "user_rollups" in statement:
            caught.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", catch)
    try:
        summarise_user(conn, [shop], "alice", T0 + 5 * HOUR + 60, T0 + 2 * DAY + 7 * HOUR + 59.5, period_s=DAY)
    finally:
        event.remove(conn, "before_cursor_execute", catch)
    ((statement, parameters),) = caught
    if conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE user_rollups"))
        conn.execute(text("SET enable_seqscan = off"))  # a test-sized table is cheapest to scan whole
        return "\n".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))


def test_the_read_is_driven_by_the_key(store: Store, written: tuple[str, str]) -> None:
    """Each piece (whole days, whole hours on either side) is a range of the key: project, user, grain, start."""
    shop, _ = written
    with store.connect() as conn:
        plan = _plan(conn, shop)
    print(plan)
    if store.engine.dialect.name == "postgresql":
        assert plan.count("Index Cond") == 3 and "bucket_start >=" in plan and "Seq Scan" not in plan, plan
    else:
        ranged = "(project_id=? AND user_id=? AND bucket_s=? AND bucket_start>? AND bucket_start<?)"
        assert plan.count(ranged) == 3 and "SCAN user_rollups" not in plan, plan


def _table(store: Store) -> dict[tuple[Any, ...], dict[str, float]]:
    key = ("project_id", "user_id", "bucket_s", "bucket_start", "api_key_id", "model", "prompt_name")
    with store.connect() as conn:
        rows = conn.execute(select(user_rollups)).mappings().all()
    return {tuple(r[k] for k in key): {k: float(v) for k, v in r.items() if k not in key} for r in rows}


def _same_table(got: dict[tuple[Any, ...], dict[str, float]], want: dict[tuple[Any, ...], dict[str, float]]) -> None:
    assert set(got) == set(want)
    for key, counters in want.items():
        assert got[key] == pytest.approx(counters), key
