"""Scores of each data type (numeric, boolean, categorical) with each source on traces and spans, and end-user
feedback, through the repository (SQLite and PostgreSQL), the API, the SDK and the CLI; migration 0011 fills in
the data type of scores written before it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from pilothouse.sdk.client import Pilothouse, PilothouseError
from pilothouse.store.engine import Store, open_store
from pilothouse.store.feedback import add_feedback, trace_feedback
from pilothouse.store.migrate import alembic_config
from pilothouse.store.projects import create_project
from pilothouse.store.scores import ScoreTargetMissing, add_score, list_scores
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
MODELS = [ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake-1")])]


def _trace(project_id: str) -> TraceRecord:
    trace = TraceRecord(project_id=project_id, name="chat", source="sdk")
    trace.span("llm", "chat fake-chat").finish()
    trace.finish()
    return trace


# ------------------------------------------------------------------------------------------ repository


def test_data_types_are_inferred_checked_and_filtered(store: Store, tmp_path: Path) -> None:
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
    trace = _trace(project_id)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        sink.write_sync(trace)
    finally:
        sink.close()
    span_id = trace.spans[0].id
    with store.begin() as conn:
        numeric = add_score(conn, project_id=project_id, trace_id=trace.id, name="quality", value=0.5, source="judge")
        flag = add_score(
            conn, project_id=project_id, trace_id=trace.id, span_id=span_id, name="valid", value=False, source="code"
        )
        one = add_score(conn, project_id=project_id, trace_id=trace.id, name="ok", value=1, data_type="boolean")
        category = add_score(conn, project_id=project_id, trace_id=trace.id, name="topic", string_value="billing")
    assert (numeric.data_type, flag.data_type, one.data_type, category.data_type) == (
        "numeric",
        "boolean",
        "boolean",
        "categorical",
    )
    assert flag.value == 0.0 and one.value == 1.0 and flag.span_id == span_id
    bad: list[tuple[dict[str, Any], str]] = [
        ({"value": 2.0, "data_type": "boolean"}, "true or false"),
        ({"string_value": "x", "data_type": "numeric"}, "needs 'value'"),
        ({"value": 1.0, "data_type": "categorical"}, "needs 'string_value'"),
        ({"value": 1.0, "data_type": "ordinal"}, "data_type"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message), store.begin() as conn:
            add_score(conn, project_id=project_id, trace_id=trace.id, name="bad", **kwargs)
    with store.connect() as conn:
        booleans, _ = list_scores(conn, project_id, data_type="boolean")
        assert {s.id for s in booleans} == {flag.id, one.id}
        on_span, _ = list_scores(conn, project_id, span_id=span_id)
        assert [s.id for s in on_span] == [flag.id]


def test_feedback_is_a_row_and_a_feedback_score(store: Store, tmp_path: Path) -> None:
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
        other_id = create_project(conn, "globex").id
    trace = _trace(project_id)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        sink.write_sync(trace)
    finally:
        sink.close()
    with store.begin() as conn:
        up = add_feedback(conn, project_id=project_id, trace_id=trace.id, thumbs="up", user_id="u1", author="key_a")
        down = add_feedback(conn, project_id=project_id, trace_id=trace.id, thumbs="down", comment="wrong")
    with pytest.raises(ScoreTargetMissing), store.begin() as conn:
        add_feedback(conn, project_id=other_id, trace_id=trace.id, thumbs="up")
    with pytest.raises(ValueError, match="'up' or 'down'"), store.begin() as conn:
        add_feedback(conn, project_id=project_id, trace_id=trace.id, thumbs="meh")
    with store.connect() as conn:
        assert [f.id for f in trace_feedback(conn, project_id, trace.id)] == [up.id, down.id]
        assert trace_feedback(conn, other_id, trace.id) == []
        series, _ = list_scores(conn, project_id, name="feedback")
    by_id = {s.id: s for s in series}
    assert set(by_id) == {up.score_id, down.score_id}
    assert (by_id[up.score_id].value, by_id[down.score_id].value) == (1.0, 0.0)
    assert by_id[down.score_id].comment == "wrong" and by_id[up.score_id].author == "key_a"
    assert {s.data_type for s in series} == {"boolean"} and {s.source for s in series} == {"human"}


def test_0011_fills_in_the_data_type_of_existing_scores(empty_database: str) -> None:
    engine = create_engine(empty_database)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0010_audit_checkpoints")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, created_at) VALUES ('prj_1', 'default', 0)"))
        conn.execute(
            text(
                "INSERT INTO traces (id, project_id, name, status, started_at, input_tokens, output_tokens, cost_usd)"
                " VALUES ('t1', 'prj_1', 'chat', 'ok', 0, 0, 0, 0)"
            )
        )
        for score_id, value, string_value in [("s_num", 0.5, None), ("s_cat", None, "spam")]:
            conn.execute(
                text(
                    "INSERT INTO scores (id, project_id, trace_id, name, value, string_value, source, created_at) "
                    "VALUES (:id, 'prj_1', 't1', 'q', :value, :sv, 'human', 0)"
                ),
                {"id": score_id, "value": value, "sv": string_value},
            )
    engine.dispose()
    store = open_store(empty_database)
    try:
        with store.connect() as conn:
            types: dict[str, str] = dict(conn.execute(text("SELECT id, data_type FROM scores")).all())
        assert types == {"s_num": "numeric", "s_cat": "categorical"}
    finally:
        store.dispose()


# ------------------------------------------------------------------------------------------ API, SDK, CLI


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def _stored(http: TestClient) -> TraceRecord:
    state = http.app.api.state.pilothouse  # type: ignore[attr-defined]
    trace = _trace(state.boot.project_id)
    state.sink.write_sync(trace)
    return trace


def _sdk(http: TestClient) -> Pilothouse:
    """The SDK client over the in-process server, with the admin key."""
    ph = Pilothouse("http://testserver", "unused")
    ph._http.close()
    ph._http = cast(httpx.Client, http)
    return ph


def _key(http: TestClient, role: str) -> str:
    response = http.post("/api/keys", json={"name": f"k-{role}", "role": role})
    assert response.status_code == 201, response.text
    key: str = response.json()["secret"]
    return key


def test_score_types_through_the_api(http: TestClient) -> None:
    trace = _stored(http)
    span_id = trace.spans[0].id
    cases: list[tuple[dict[str, Any], str, Any]] = [
        ({"name": "accuracy", "value": 0.9, "source": "judge"}, "numeric", 0.9),
        ({"name": "valid_json", "value": True, "source": "code", "span_id": span_id}, "boolean", 1.0),
        ({"name": "valid_json", "value": False, "source": "code"}, "boolean", 0.0),
        ({"name": "approved", "value": 1, "data_type": "boolean"}, "boolean", 1.0),
        ({"name": "tone", "string_value": "curt", "source": "human", "span_id": span_id}, "categorical", None),
    ]
    for body, data_type, value in cases:
        response = http.post("/api/scores", json={"trace_id": trace.id, **body})
        assert response.status_code == 201, response.text
        got = response.json()
        assert (got["data_type"], got["value"], got["span_id"]) == (data_type, value, body.get("span_id"))
    listed = http.get("/api/scores", params={"trace_id": trace.id, "data_type": "boolean"}).json()["data"]
    assert len(listed) == 3 and {s["name"] for s in listed} == {"valid_json", "approved"}
    on_span = http.get("/api/scores", params={"span_id": span_id}).json()["data"]
    assert {s["name"] for s in on_span} == {"valid_json", "tone"}
    bad = http.post(
        "/api/scores", json={"trace_id": trace.id, "name": "approved", "value": 0.5, "data_type": "boolean"}
    )
    assert bad.status_code == 400 and "true or false" in bad.json()["error"]["message"]
    unknown = http.post("/api/scores", json={"trace_id": trace.id, "name": "x", "value": 1, "data_type": "ordinal"})
    assert unknown.status_code == 422


def test_feedback_through_the_api_sdk_and_cli(http: TestClient) -> None:
    trace = _stored(http)
    service = _key(http, "service")
    created = http.post(
        "/api/feedback",
        json={"trace_id": trace.id, "thumbs": "up", "comment": "great", "user_id": "end-user-1"},
        headers={"authorization": f"Bearer {service}"},
    )
    assert created.status_code == 201, created.text
    row = created.json()
    assert (row["thumbs"], row["comment"], row["user_id"]) == ("up", "great", "end-user-1")
    assert row["author"].startswith("key_") and row["score_id"].startswith("score_")

    viewer = _key(http, "viewer")
    refused = http.post(
        "/api/feedback", json={"trace_id": trace.id, "thumbs": "up"}, headers={"authorization": f"Bearer {viewer}"}
    )
    assert refused.status_code == 403
    assert http.post("/api/feedback", json={"trace_id": "f" * 32, "thumbs": "up"}).status_code == 404
    assert http.post("/api/feedback", json={"trace_id": trace.id, "thumbs": "sideways"}).status_code == 422

    ph = _sdk(http)
    sdk_row = ph.feedback(trace.id, thumbs="down", comment="slow")
    assert sdk_row["thumbs"] == "down" and sdk_row["user_id"] is None
    with pytest.raises(PilothouseError) as missing:
        ph.feedback("f" * 32, thumbs="up")
    assert missing.value.status == 404

    cli = runner.invoke(app, ["feedback", trace.id, "--up", "--comment", "fixed it", "--user", "u7", "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["user_id"] == "u7"
    plain = runner.invoke(app, ["feedback", trace.id, "--down"])
    assert plain.exit_code == 0 and f"feedback on trace {trace.id}: thumbs down" in plain.stdout
    neither = runner.invoke(app, ["feedback", trace.id])
    assert neither.exit_code == 2 and "exactly one of --up or --down" in neither.output

    series = ph.list_scores(trace_id=trace.id, name="feedback")["data"]
    assert sorted(s["value"] for s in series) == [0.0, 0.0, 1.0, 1.0]
    assert {s["data_type"] for s in series} == {"boolean"}
    explained = ph.explain_trace(trace.id)
    assert [f["thumbs"] for f in explained["feedback"]] == ["up", "down", "up", "down"]


def test_score_types_through_the_sdk_and_cli(http: TestClient) -> None:
    trace = _stored(http)
    span_id = trace.spans[0].id
    ph = _sdk(http)
    assert ph.score(trace.id, "grounded", True, source="judge", span_id=span_id)["data_type"] == "boolean"
    assert ph.score(trace.id, "latency_ok", 1, data_type="boolean")["value"] == 1.0
    assert ph.score(trace.id, "quality", 0.25, source="code")["data_type"] == "numeric"
    assert ph.score(trace.id, "topic", "refunds")["data_type"] == "categorical"

    def add(*args: str) -> dict[str, Any]:
        result = runner.invoke(app, ["scores", "add", trace.id, *args, "--json"])
        assert result.exit_code == 0, result.output
        loaded: dict[str, Any] = json.loads(result.stdout)
        return loaded

    assert (add("helpful", "true")["data_type"], add("helpful", "FALSE")["value"]) == ("boolean", 0.0)
    assert add("approved", "1", "--type", "boolean")["data_type"] == "boolean"
    assert add("word", "true", "--type", "categorical")["string_value"] == "true"
    on_span = add("tone", "warm", "--span", span_id, "--source", "judge")
    assert (on_span["span_id"], on_span["data_type"], on_span["source"]) == (span_id, "categorical", "judge")
    assert add("quality", "0.75")["data_type"] == "numeric"
    bad = runner.invoke(app, ["scores", "add", trace.id, "approved", "0.5", "--type", "boolean"])
    assert bad.exit_code == 1 and "true or false" in bad.output
    wrong = runner.invoke(app, ["scores", "add", trace.id, "approved", "x", "--type", "ordinal"])
    assert wrong.exit_code == 2

    shown = runner.invoke(app, ["scores", "list", "--trace", trace.id, "--span", span_id])
    assert shown.exit_code == 0, shown.output
    assert "grounded\ttrue\tboolean" in shown.stdout and "tone\twarm\tcategorical" in shown.stdout
    assert "quality" not in shown.stdout  # only the span's scores
    plain = runner.invoke(app, ["scores", "add", trace.id, "ok", "true"])
    assert plain.exit_code == 0 and f"scored trace {trace.id}: ok = true" in plain.stdout
