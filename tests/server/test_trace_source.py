"""Each trace records who made the call: the HTTP gateway's are `http`, and `GET /api/traces?source=` and
`pilothouse traces list --source` filter on it. The server runs in this process with fake models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from pilothouse.store.traces import TraceFilter, list_traces
from pilothouse.tracing.model import TraceRecord
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
MODELS = [
    ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake-1")]),
    ModelEntry(name="fake-embed", kind="embedding", deployments=[Deployment(provider="fake", model="e")]),
]
TRACE = "x-pilothouse-trace-id"


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def test_gateway_traces_are_http_and_filterable_by_source(http: TestClient) -> None:
    chat = http.post(
        "/v1/chat/completions", json={"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}
    )
    embed = http.post("/v1/embeddings", json={"model": "fake-embed", "input": "hi"})
    refused = http.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert (chat.status_code, embed.status_code, refused.status_code) == (200, 200, 404)
    ids = {r.headers[TRACE] for r in (chat, embed, refused)}
    for trace_id in ids:
        assert http.get(f"/api/traces/{trace_id}").json()["source"] == "http"

    listed = http.get("/api/traces", params={"source": "http"}).json()["data"]
    assert {t["id"] for t in listed} == ids and all(t["source"] == "http" for t in listed)
    assert http.get("/api/traces", params={"source": "prompt_test"}).json()["data"] == []
    assert {t["id"] for t in http.get("/api/traces").json()["data"]} == ids  # no filter: all of them

    bad = http.get("/api/traces", params={"source": "carrier-pigeon"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "source"

    piped = runner.invoke(app, ["traces", "list", "--source", "http", "--json"])
    assert piped.exit_code == 0, piped.output
    assert {t["id"] for t in json.loads(piped.stdout)["data"]} == ids
    none = runner.invoke(app, ["traces", "list", "--source", "eval", "--json"])
    assert none.exit_code == 0 and json.loads(none.stdout)["data"] == []


def test_a_trace_written_without_a_source_reads_back_as_null(http: TestClient) -> None:
    """A call recovered from the write-ahead ledger has no known source: stored and listed as null, and not
    matched by any source filter."""
    state = http.app.api.state.pilothouse  # type: ignore[attr-defined]
    trace = TraceRecord(project_id=state.boot.project_id, name="chat")
    state.sink.write_sync(trace)
    with state.store.connect() as conn:
        (row,), _ = list_traces(conn, TraceFilter(project_id=trace.project_id))
        assert row["id"] == trace.id and row["source"] is None
        assert list_traces(conn, TraceFilter(project_id=trace.project_id, source="http"))[0] == []


def test_traces_list_filters_by_session_and_shows_the_source(http: TestClient) -> None:
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}
    mine = http.post("/v1/chat/completions", json=body, headers={"x-pilothouse-session-id": "s-1"})
    http.post("/v1/chat/completions", json=body, headers={"x-pilothouse-session-id": "s-2"})
    listed = runner.invoke(app, ["traces", "list", "--session", "s-1", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [t["id"] for t in json.loads(listed.stdout)["data"]] == [mine.headers[TRACE]]
    shown = runner.invoke(app, ["traces", "list", "--session", "s-1"])
    assert shown.exit_code == 0, shown.output
    (row,) = [line for line in shown.stdout.splitlines() if mine.headers[TRACE] in line]
    assert row.split("\t")[2] == "http"  # piped: tab-separated columns, source third
