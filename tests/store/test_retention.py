"""Trace retention on SQLite and PostgreSQL: content of traces older than the cutoff is deleted, their numbers
and scores are kept, newer traces are untouched, each purge is an audit event, a dry run changes nothing; the
CLI (`pilothouse traces purge`) and the server's retention job do the same."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from pilothouse.audit.chain import list_events, recorder, verify_chain
from pilothouse.cli.main import app as cli_app
from pilothouse.config import Deployment, ModelEntry, TraceSettings
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.retention import DAY_S, purge_content
from pilothouse.store.tables import scores, spans, traces
from tests.support.asgi_app import app_settings, running

NOW = 1_750_000_000.0
MESSAGES = {"messages": [{"role": "user", "content": "my card is 4111 1111 1111 1111"}]}
ANSWER = {"message": {"role": "assistant", "content": "noted"}, "finish_reason": "stop"}


def add_trace(store: Store, project_id: str, trace_id: str, started_at: float) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(traces).values(
                id=trace_id,
                project_id=project_id,
                name="chat",
                status="ok",
                started_at=started_at,
                ended_at=started_at + 0.5,
                model="m",
                input_tokens=12,
                output_tokens=3,
                cost_usd=Decimal("0.000042"),
            )
        )
        for n, kind in enumerate(("llm", "guard")):
            conn.execute(
                insert(spans).values(
                    id=f"{trace_id[:3]}{trace_id[-11:]}{n:02d}",
                    trace_id=trace_id,
                    project_id=project_id,
                    kind=kind,
                    name=kind,
                    status="ok",
                    started_at=started_at,
                    latency_ms=500.0,
                    model="m",
                    input_tokens=12,
                    output_tokens=3,
                    usage_estimated=False,
                    cost_usd=Decimal("0.000042"),
                    attributes={"pilothouse.guard.score": 0.1},
                    input=MESSAGES,
                    output=ANSWER,
                )
            )
        conn.execute(
            insert(scores).values(
                id=f"score_{trace_id}",
                project_id=project_id,
                trace_id=trace_id,
                name="helpful",
                value=0.9,
                source="human",
                created_at=started_at,
            )
        )


def fill(store: Store) -> str:
    with store.begin() as conn:
        project = create_project(conn, "retained")
    add_trace(store, project.id, "old0000000000000000000000000001", NOW - 40 * DAY_S)
    add_trace(store, project.id, "old0000000000000000000000000002", NOW - 31 * DAY_S)
    add_trace(store, project.id, "new0000000000000000000000000001", NOW - 29 * DAY_S)
    return project.id


def span_rows(store: Store, trace_id: str) -> list[dict[str, object]]:
    with store.connect() as conn:
        rows = conn.execute(select(spans).where(spans.c.trace_id == trace_id).order_by(spans.c.id)).all()
    return [dict(r._mapping) for r in rows]


def test_purge_keeps_numbers_and_deletes_content(store: Store) -> None:
    project_id = fill(store)
    dry = purge_content(store, older_than_s=30 * DAY_S, dry_run=True, now=NOW)
    assert (dry.traces, dry.spans, dry.by_project) == (2, 4, {project_id: 2})
    assert span_rows(store, "old0000000000000000000000000001")[0]["input"] == MESSAGES  # a dry run changes nothing

    done = purge_content(store, older_than_s=30 * DAY_S, now=NOW, record=recorder("tester", "trace.content.purge"))
    assert (done.traces, done.spans, done.dry_run) == (2, 4, False)
    for trace_id in ("old0000000000000000000000000001", "old0000000000000000000000000002"):
        for row in span_rows(store, trace_id):
            assert row["input"] is None and row["output"] is None
            assert (row["input_tokens"], row["output_tokens"], row["latency_ms"], row["model"]) == (12, 3, 500.0, "m")
            assert row["cost_usd"] == Decimal("0.000042") and row["attributes"] == {"pilothouse.guard.score": 0.1}
    assert all(
        r["input"] == MESSAGES and r["output"] == ANSWER for r in span_rows(store, "new0000000000000000000000000001")
    )
    with store.connect() as conn:
        purged = dict(conn.execute(select(traces.c.id, traces.c.content_purged_at)).all())
        assert purged == {
            "old0000000000000000000000000001": NOW,
            "old0000000000000000000000000002": NOW,
            "new0000000000000000000000000001": None,
        }
        kept = conn.execute(select(traces.c.input_tokens, traces.c.cost_usd, traces.c.status)).all()
        assert {tuple(r) for r in kept} == {(12, Decimal("0.000042"), "ok")}
        assert conn.execute(select(scores.c.value)).scalars().all() == [0.9, 0.9, 0.9]
        events = list_events(conn, actions=["trace.content.purge"])
        assert [(e.actor, e.project_id, e.details) for e in events] == [
            ("tester", project_id, {"cutoff": NOW - 30 * DAY_S, "traces": 2, "spans": 4})
        ]
        assert verify_chain(conn) == (1, None)

    again = purge_content(store, older_than_s=30 * DAY_S, now=NOW, record=recorder("tester", "trace.content.purge"))
    assert (again.traces, again.spans) == (0, 0)
    with store.connect() as conn:
        assert len(list_events(conn, actions=["trace.content.purge"])) == 1  # nothing purged, nothing recorded


def test_purge_in_small_batches(store: Store) -> None:
    fill(store)
    done = purge_content(store, older_than_s=1 * DAY_S, now=NOW, batch=1)
    assert (done.traces, done.spans) == (3, 6)


def test_a_cutoff_must_be_in_the_past(store: Store) -> None:
    with pytest.raises(ValueError, match="older_than_s must be > 0"):
        purge_content(store, older_than_s=0)


def test_cli_purge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTHOUSE_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'ph.db'}"
    store = open_store(url)
    try:
        with store.begin() as conn:
            project = create_project(conn, "cli")
        now = time.time()
        add_trace(store, project.id, "old0000000000000000000000000009", now - 10 * DAY_S)
        add_trace(store, project.id, "new0000000000000000000000000009", now - 1 * DAY_S)
        runner = CliRunner()
        dry = runner.invoke(cli_app, ["traces", "purge", "--older-than", "7d", "--dry-run", "--database-url", url])
        assert dry.exit_code == 0, dry.output
        assert "would delete the content of 1 traces (2 spans)" in dry.stdout
        result = runner.invoke(cli_app, ["traces", "purge", "--older-than", "7d", "--database-url", url, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["traces"] == 1
        assert span_rows(store, "old0000000000000000000000000009")[0]["input"] is None
        assert span_rows(store, "new0000000000000000000000000009")[0]["input"] == MESSAGES
        with store.connect() as conn:
            (event,) = list_events(conn, actions=["trace.content.purge"])
        assert event.actor.startswith("cli:")
        bad = runner.invoke(cli_app, ["traces", "purge", "--older-than", "soon", "--database-url", url])
        assert bad.exit_code == 2 and "--older-than" in bad.stderr and "Traceback" not in bad.output
    finally:
        store.dispose()


def test_the_server_purges_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    models = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]
    settings = app_settings(data, models, traces=TraceSettings(retention_days=30))
    store = open_store(settings.resolved_database_url())
    try:
        with store.begin() as conn:
            project = create_project(conn, "served")
        add_trace(store, project.id, "old0000000000000000000000000007", time.time() - 31 * DAY_S)
        with running(settings, monkeypatch):
            deadline = time.monotonic() + 10
            while span_rows(store, "old0000000000000000000000000007")[0]["input"] is not None:
                assert time.monotonic() < deadline, "the retention job did not run at start"
                time.sleep(0.05)
        with store.connect() as conn:
            (event,) = list_events(conn, actions=["trace.content.purge"])
        assert event.actor == "system:retention" and event.details == {
            "cutoff": pytest.approx(time.time() - 30 * DAY_S, abs=60),
            "traces": 1,
            "spans": 2,
        }
    finally:
        store.dispose()
