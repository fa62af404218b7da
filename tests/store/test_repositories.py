"""Repositories on SQLite and PostgreSQL: projects, API keys, exact money, traces read back, bootstrap."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.money import from_pico, to_pico
from pilothouse.server.bootstrap import bootstrap
from pilothouse.store.engine import Store
from pilothouse.store.keys import (
    KEY_PREFIX,
    create_key,
    find_by_secret,
    get_key,
    list_keys,
    revoke_key,
)
from pilothouse.store.projects import DEFAULT_PROJECT, create_project, get_project, list_projects
from pilothouse.store.tables import api_keys, audit_events, projects, traces
from pilothouse.store.traces import BadCursor, TraceFilter, encode_cursor, get_trace, list_traces
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

# ---------------------------------------------------------------------------------------------- projects


def test_project_create_get_list(store: Store) -> None:
    with store.begin() as conn:
        beta = create_project(conn, "beta")
        alpha = create_project(conn, "alpha")
    assert beta.id.startswith("proj_") and beta.id != alpha.id
    with store.connect() as conn:
        assert get_project(conn, beta.id) == beta
        assert get_project(conn, "beta") == beta
        assert get_project(conn, "gamma") is None
        assert [p.name for p in list_projects(conn)] == ["alpha", "beta"]
    assert beta.to_dict() == {"id": beta.id, "name": "beta", "created_at": beta.created_at}


def test_project_names_are_unique(store: Store) -> None:
    with store.begin() as conn:
        create_project(conn, "dup")
    with pytest.raises(IntegrityError), store.begin() as conn:
        create_project(conn, "dup")
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(projects)).scalar_one() == 1


# ---------------------------------------------------------------------------------------------- API keys


@pytest.fixture
def project_id(store: Store) -> str:
    with store.begin() as conn:
        return create_project(conn, "acme").id


def test_key_secret_is_stored_only_hashed(store: Store, project_id: str) -> None:
    with store.begin() as conn:
        key, secret = create_key(conn, project_id=project_id, name="ci", role="service", created_by="key_admin")
    assert secret.startswith(KEY_PREFIX) and len(secret) > 40
    assert key.prefix == secret[:10]
    assert key.active and key.role == "service" and key.created_by == "key_admin"
    with store.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == key.id)).one()
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in row._mapping.items():
        assert secret not in str(value), f"the secret appears in api_keys.{column}"
    assert "secret" not in key.to_dict()


def test_find_by_secret(store: Store, project_id: str) -> None:
    with store.begin() as conn:
        key, secret = create_key(conn, project_id=project_id, name="ci", role="developer")
        _, given = create_key(conn, project_id=project_id, name="auto", role="admin", secret="ph-chosen-secret-1")
    assert given == "ph-chosen-secret-1"
    with store.connect() as conn:
        assert find_by_secret(conn, secret) == key
        assert find_by_secret(conn, secret + "x") is None
        found = find_by_secret(conn, "ph-chosen-secret-1")
        assert found is not None and found.role == "admin" and found.name == "auto"


def test_revoke_and_list_keys(store: Store, project_id: str) -> None:
    with store.begin() as conn:
        other = create_project(conn, "other").id
        first, _ = create_key(conn, project_id=project_id, name="first", role="service")
        second, _ = create_key(conn, project_id=project_id, name="second", role="viewer")
        elsewhere, _ = create_key(conn, project_id=other, name="elsewhere", role="admin")
    with store.begin() as conn:
        assert revoke_key(conn, first.id) is True
    with store.begin() as conn:
        assert revoke_key(conn, first.id) is False
        assert revoke_key(conn, "key_doesnotexist") is False
    with store.connect() as conn:
        revoked = get_key(conn, first.id)
        assert revoked is not None and not revoked.active and revoked.revoked_at is not None
        assert revoked.to_dict()["active"] is False
        assert get_key(conn, "key_doesnotexist") is None
        assert {k.id for k in list_keys(conn)} == {first.id, second.id, elsewhere.id}
        assert [k.id for k in list_keys(conn, project_id=project_id)] == [first.id, second.id]
        assert [k.id for k in list_keys(conn, project_id=project_id, include_revoked=False)] == [second.id]


def test_invalid_role_is_rejected(store: Store, project_id: str) -> None:
    with pytest.raises(ValueError, match="unknown role 'root'"), store.begin() as conn:
        create_key(conn, project_id=project_id, name="x", role="root")
    with store.connect() as conn:
        assert list_keys(conn) == []


# ---------------------------------------------------------------------------------------------- money


def _trace_row(project_id: str, trace_id: str, cost: Any) -> dict[str, Any]:
    return {
        "id": trace_id,
        "project_id": project_id,
        "name": "chat",
        "status": "ok",
        "started_at": 1_700_000_000.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": cost,
    }


def test_money_round_trips_exactly_and_sums_in_sql(store: Store, project_id: str) -> None:
    amounts = [Decimal("0.000000123456"), Decimal("0.1"), Decimal("0.2"), Decimal("98765.432109876544")]
    with store.begin() as conn:
        conn.execute(insert(traces), [_trace_row(project_id, f"t{i}", a) for i, a in enumerate(amounts)])
    with store.connect() as conn:
        back: dict[str, Decimal] = {r[0]: r[1] for r in conn.execute(select(traces.c.id, traces.c.cost_usd))}
        raw: dict[str, Any] = {r[0]: r[1] for r in conn.execute(text("SELECT id, cost_usd FROM traces"))}
        raw_sum = conn.execute(text("SELECT SUM(cost_usd) FROM traces")).scalar_one()
        typed_sum = conn.execute(select(func.sum(traces.c.cost_usd))).scalar_one()
    for i, amount in enumerate(amounts):
        assert back[f"t{i}"] == amount
        assert isinstance(back[f"t{i}"], Decimal)
    assert int(raw["t0"]) == 123456  # pico-dollars, an exact integer in the database
    assert int(raw["t1"]) == 100_000_000_000
    assert from_pico(int(raw_sum)) == Decimal("98765.732110000000") == sum(amounts)
    assert typed_sum == sum(amounts)
    assert from_pico(0) == Decimal(0)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("10", "10"), ("100.00", "100"), ("1.50", "1.5"), ("0.000000000001", "0.000000000001"), ("0", "0")],
)
def test_trace_cost_is_a_plain_exact_string(store: Store, project_id: str, amount: str, shown: str) -> None:
    with store.begin() as conn:
        conn.execute(insert(traces), [_trace_row(project_id, "t", Decimal(amount))])
    with store.connect() as conn:
        got = get_trace(conn, project_id, "t")
        assert conn.execute(select(traces.c.cost_usd)).scalar_one() == Decimal(amount)
    assert got is not None and got["cost_usd"] == shown


def test_money_rounds_below_a_pico_dollar_half_even(store: Store, project_id: str) -> None:
    assert to_pico(Decimal("0.0000000000005")) == 0
    assert to_pico(Decimal("0.0000000000015")) == 2
    with store.begin() as conn:
        conn.execute(insert(traces), [_trace_row(project_id, "t", 0.25)])  # a float is taken via str()
    with store.connect() as conn:
        assert conn.execute(select(traces.c.cost_usd)).scalar_one() == Decimal("0.25")


# ---------------------------------------------------------------------------------------------- traces

BASE = 1_800_000_000.0


@pytest.fixture
def sink(store: Store, tmp_path: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=tmp_path / "traces-unstored.jsonl")
    yield s
    s.close()


def _make_trace(
    project_id: str,
    started_at: float,
    *,
    model: str = "gpt-x",
    status: str = "ok",
    user: str | None = None,
    session: str | None = None,
) -> TraceRecord:
    trace = TraceRecord(
        project_id=project_id,
        name="chat",
        started_at=started_at,
        model=model,
        user_id=user,
        session_id=session,
        tags=["t1"],
    )
    root = trace.span("step", "request")
    root.started_at = started_at
    llm = trace.span("llm", "chat " + model, parent_id=root.id)
    llm.started_at = started_at + 0.001
    llm.model = model
    llm.input_tokens = 10
    llm.output_tokens = 5
    llm.cost_usd = Decimal("0.000012")
    llm.finish(status="error" if status == "error" else "ok", error="boom" if status == "error" else None)
    root.finish(status=llm.status, error=llm.error)
    trace.finish()
    trace.ended_at = started_at + 0.25
    return trace


@pytest.fixture
def corpus(store: Store, sink: StoreSink, project_id: str) -> list[TraceRecord]:
    """25 traces: two models, some errors, users, sessions, and pairs that share a start time."""
    records: list[TraceRecord] = []
    for i in range(25):
        started = BASE + (i // 2)  # pairs with equal started_at exercise the id tie-break of the cursor
        records.append(
            _make_trace(
                project_id,
                started,
                model="gpt-x" if i % 3 else "claude-y",
                status="error" if i % 5 == 0 else "ok",
                user=f"user-{i % 4}",
                session=f"sess-{i % 2}",
            )
        )
    for record in records:
        sink.write_sync(record)
    return records


def _newest_first(records: list[TraceRecord]) -> list[str]:
    return [t.id for t in sorted(records, key=lambda t: (t.started_at, t.id), reverse=True)]


def _all(store: Store, flt: TraceFilter) -> list[str]:
    with store.connect() as conn:
        page, cursor = list_traces(conn, flt, limit=1000)
    assert cursor is None
    return [t["id"] for t in page]


def test_list_traces_filters(store: Store, corpus: list[TraceRecord], project_id: str) -> None:
    flt = TraceFilter(project_id=project_id)
    assert _all(store, flt) == _newest_first(corpus)

    since, until = BASE + 3, BASE + 8
    expect = _newest_first([t for t in corpus if since <= t.started_at < until])
    assert len(expect) == 10
    assert _all(store, TraceFilter(project_id=project_id, since=since, until=until)) == expect
    assert _all(store, TraceFilter(project_id=project_id, since=BASE + 12)) == _newest_first(corpus[24:])

    for model in ("gpt-x", "claude-y"):
        got = _all(store, TraceFilter(project_id=project_id, model=model))
        assert got == _newest_first([t for t in corpus if t.model == model]) and got
    errors = _all(store, TraceFilter(project_id=project_id, status="error"))
    assert errors == _newest_first([t for t in corpus if t.status == "error"])
    assert len(errors) == 5
    assert _all(store, TraceFilter(project_id=project_id, user_id="user-1")) == _newest_first(
        [t for t in corpus if t.user_id == "user-1"]
    )
    assert _all(store, TraceFilter(project_id=project_id, session_id="sess-0")) == _newest_first(
        [t for t in corpus if t.session_id == "sess-0"]
    )
    combined = TraceFilter(project_id=project_id, model="gpt-x", status="ok", user_id="user-2", since=BASE + 2)
    assert _all(store, combined) == _newest_first(
        [
            t
            for t in corpus
            if t.model == "gpt-x" and t.status == "ok" and t.user_id == "user-2" and t.started_at >= BASE + 2
        ]
    )
    assert _all(store, TraceFilter(project_id="proj_other")) == []
    assert _all(store, TraceFilter(project_id=project_id, model="nope")) == []


@pytest.mark.parametrize("limit", [1, 4, 7, 25])
def test_pagination_returns_every_trace_once(
    store: Store, corpus: list[TraceRecord], project_id: str, limit: int
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        with store.connect() as conn:
            page, cursor = list_traces(conn, TraceFilter(project_id=project_id), limit=limit, cursor=cursor)
        pages += 1
        assert len(page) <= limit
        seen.extend(t["id"] for t in page)
        if cursor is None:
            break
        assert pages < 100
    assert seen == _newest_first(corpus)
    assert len(set(seen)) == 25
    assert pages == -(-25 // limit)


def test_pagination_with_a_filter(store: Store, corpus: list[TraceRecord], project_id: str) -> None:
    flt = TraceFilter(project_id=project_id, model="gpt-x")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        with store.connect() as conn:
            page, cursor = list_traces(conn, flt, limit=3, cursor=cursor)
        seen.extend(t["id"] for t in page)
        if cursor is None:
            break
    assert seen == _newest_first([t for t in corpus if t.model == "gpt-x"])


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%%%",
        "é",
        encode_cursor(1.0, "x").replace("=", "") + "!!",
        "bm90LWEtbnVtYmVyfGFiYw==",  # base64 of "not-a-number|abc"
        "//79",  # base64 of bytes that are not UTF-8
        "bm9waXBl",  # base64 of "nopipe"
    ],
)
def test_garbage_cursor_raises_bad_cursor(store: Store, project_id: str, cursor: str) -> None:
    with store.connect() as conn, pytest.raises(BadCursor, match="invalid cursor"):
        list_traces(conn, TraceFilter(project_id=project_id), cursor=cursor)


async def test_get_trace_reads_back_spans_cost_and_attributes(store: Store, sink: StoreSink, project_id: str) -> None:
    with store.begin() as conn:
        other_project = create_project(conn, "other").id
    trace = TraceRecord(project_id=project_id, name="chat", model="gpt-x", user_id="u", session_id="s", tags=["a"])
    attributes: dict[str, Any] = {
        "gen_ai.request.temperature": 0.25,
        "nested": {"list": [1, "two", None, True], "unicode": "naïve ☕ 漢字"},
        "empty": {},
    }
    spans = []
    for i in range(5):
        span = trace.span("llm" if i % 2 else "step", f"span-{i}")
        span.started_at = trace.started_at + (4 - i) / 1000  # created in reverse order of their start
        span.cost_usd = Decimal("0.000000000123") * (i + 1) if i % 2 else None
        span.input_tokens = 7 if i % 2 else None
        span.output_tokens = 3 if i % 2 else None
        span.attributes = {**attributes, "i": i}
        span.input = {"messages": [{"role": "user", "content": f"hello {i}"}]}
        span.output = {"message": {"role": "assistant", "content": "hi"}} if i % 2 else None
        span.usage_estimated = i == 1
        span.finish()
        spans.append(span)
    trace.finish()
    await sink.write(trace)

    with store.connect() as conn:
        got = get_trace(conn, project_id, trace.id)
        assert get_trace(conn, other_project, trace.id) is None
        assert get_trace(conn, project_id, "0" * 32) is None
    assert got is not None
    assert got["id"] == trace.id and got["model"] == "gpt-x" and got["user_id"] == "u" and got["session_id"] == "s"
    assert got["tags"] == ["a"]
    assert got["input_tokens"] == 14 and got["output_tokens"] == 6
    assert got["cost_usd"] == "0.000000000738"  # a plain decimal string, exact, never 7.38E-10
    assert got["latency_ms"] == pytest.approx((trace.ended_at or 0) * 1000 - trace.started_at * 1000, abs=0.01)
    assert [s["name"] for s in got["spans"]] == [f"span-{i}" for i in reversed(range(5))]
    by_name = {s["name"]: s for s in got["spans"]}
    for i, span in enumerate(spans):
        row = by_name[f"span-{i}"]
        assert row["id"] == span.id and row["trace_id"] == trace.id and row["kind"] == span.kind
        assert row["attributes"] == {**attributes, "i": i}
        assert row["input"] == span.input and row["output"] == span.output
        assert row["usage_estimated"] is (i == 1)
        if span.cost_usd is None:
            assert row["cost_usd"] is None
        else:
            assert row["cost_usd"] == format(span.cost_usd, "f")


# ---------------------------------------------------------------------------------------------- bootstrap


def _counts(store: Store) -> tuple[int, int, int]:
    with store.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(projects)).scalar_one(),
            conn.execute(select(func.count()).select_from(api_keys)).scalar_one(),
            conn.execute(select(func.count()).select_from(audit_events)).scalar_one(),
        )


def test_bootstrap_uses_the_admin_key_from_the_environment(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_ADMIN_KEY", "ph-from-the-environment-42")
    key_path = tmp_path / "data" / "admin_key"
    boot = bootstrap(store, key_path)
    assert boot.secret == "ph-from-the-environment-42"
    assert key_path.read_text() == "ph-from-the-environment-42\n"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with store.connect() as conn:
        key = find_by_secret(conn, "ph-from-the-environment-42")
        project = get_project(conn, DEFAULT_PROJECT)
        assert key is not None and key.id == boot.key_id and key.role == "owner"
        assert project is not None and key.project_id == project.id == boot.project_id
        assert [e.action for e in list_events(conn)] == ["project.create", "key.create"]
        assert verify_chain(conn) == (2, None)


def test_bootstrap_random_key_file_is_private_and_second_run_creates_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PILOTHOUSE_ADMIN_KEY", raising=False)
    key_path = tmp_path / "admin_key"
    key_path.write_text("stale\n")
    key_path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        boot = bootstrap(store, key_path)
    finally:
        os.umask(old_umask)
    assert boot.secret is not None and boot.secret.startswith(KEY_PREFIX)
    assert key_path.read_text() == boot.secret + "\n"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    counts = _counts(store)
    assert counts == (1, 1, 2)

    monkeypatch.setenv("PILOTHOUSE_ADMIN_KEY", "ph-another-key-is-ignored")
    again = bootstrap(store, key_path)
    assert again.secret is None and again.key_id is None and again.project_id == boot.project_id
    assert _counts(store) == counts
    assert key_path.read_text() == boot.secret + "\n"


def test_concurrent_bootstraps_create_one_admin_key(store: Store, tmp_path: Path) -> None:
    """Replicas starting together on one database: exactly one of them creates the project and key."""
    n = 4
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def start(i: int) -> None:
        barrier.wait()
        try:
            outcome: Any = bootstrap(store, tmp_path / f"replica-{i}" / "admin_key")
        except Exception as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r.secret is not None]) == 1
    assert _counts(store) == (1, 1, 2)
    with store.connect() as conn:
        assert verify_chain(conn) == (2, None)
