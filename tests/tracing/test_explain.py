"""Explaining a trace: the repository on SQLite and PostgreSQL, `GET /api/traces/{id}/explain` and
`pilothouse traces explain ID` (page and --json) on an in-process server; another project's trace is a 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from pilothouse.store.engine import Store
from pilothouse.store.feedback import add_feedback
from pilothouse.store.projects import create_project
from pilothouse.store.scores import add_score
from pilothouse.tracing.explain import explain_trace
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.support.asgi_app import app_settings, cli_in_process
from tests.tracing.sample_trace import CHUNKS, sample_trace

runner = CliRunner()
MODELS = [ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake-1")])]


def _span(trace: TraceRecord, name: str) -> str:
    return next(s.id for s in trace.spans if s.name == name)


def check_sections(doc: dict[str, Any], trace: TraceRecord) -> None:
    """Every section holds what the sample trace recorded."""
    assert doc["trace"]["id"] == trace.id and doc["trace"]["source"] == "sdk"
    assert doc["trace"]["session_id"] == "sess-1" and doc["trace"]["tags"] == ["refunds"]
    prompt = doc["prompt"]
    assert (prompt["name"], prompt["version"], prompt["label"]) == ("support-answer", 3, "production")
    assert prompt["content_hash"] == "abc123" and prompt["variables"] == {"question": "How long do refunds take?"}
    assert [m["role"] for m in prompt["messages"]] == ["system", "user"]
    assert "[CREDIT_CARD]" in prompt["messages"][1]["content"]  # content as stored: redacted
    model = doc["model"]
    assert (model["model"], model["provider"], model["deployment"]) == ("fake-chat", "fake", "fake-1")
    assert model["parameters"] == {"temperature": 0.2, "max_tokens": 64}
    assert model["finish_reasons"] == ["tool_calls"] and model["attempts"] == 1
    assert doc["answer"]["tool_calls"][0]["id"] == "call_1"
    (retrieval,) = doc["retrieval"]
    assert retrieval["query"] == "refund duration" and retrieval["data_source"] == "handbook"
    assert retrieval["chunks"] == CHUNKS
    guards = {g["name"]: g for g in doc["guards"]}
    pii = guards["guard input pii"]
    assert (pii["policy"], pii["policy_version"], pii["decision"], pii["kinds"]) == (
        "pii-default",
        2,
        "redact",
        ["CREDIT_CARD"],
    )
    assert guards["tool_gate"]["tool"] == "lookup_order" and guards["tool_gate"]["decision"] == "allow"
    (tool,) = doc["tools"]  # the model's call and the tool span that ran it are one entry
    assert (tool["name"], tool["call_id"], tool["arguments"], tool["result"]) == (
        "lookup_order",
        "call_1",
        {"order": "A-1"},
        {"status": "refunded"},
    )
    steps = [(p["depth"], p["kind"], p["name"]) for p in doc["path"]]
    assert steps == [
        (0, "step", "agent"),
        (1, "step", "plan"),
        (2, "retrieval", "search handbook"),
        (2, "guard", "guard input pii"),
        (2, "llm", "chat fake-chat"),
        (1, "step", "act"),
        (2, "guard", "tool_gate"),
        (2, "tool", "lookup_order"),
    ]
    llm_step = doc["path"][4]
    assert llm_step["latency_ms"] == 300.0 and llm_step["cost_usd"] == "0.000123" and llm_step["start_ms"] == 70.0
    assert doc["cost"]["by_kind"] == {"llm": "0.000123"}


def _score_and_feedback(store: Store, project_id: str, trace: TraceRecord) -> None:
    with store.begin() as conn:
        add_score(conn, project_id=project_id, trace_id=trace.id, name="helpful", value=0.75, source="judge")
        add_score(
            conn,
            project_id=project_id,
            trace_id=trace.id,
            span_id=_span(trace, "search handbook"),
            name="relevant",
            value=True,
            source="code",
        )
        add_score(conn, project_id=project_id, trace_id=trace.id, name="topic", string_value="refunds")
        add_feedback(conn, project_id=project_id, trace_id=trace.id, thumbs="down", comment="too slow", user_id="u1")


def check_scores(doc: dict[str, Any], trace: TraceRecord) -> None:
    scores = {s["name"]: s for s in doc["scores"]}
    assert [s["name"] for s in doc["scores"]] == ["helpful", "relevant", "topic", "feedback"]  # oldest first
    assert (scores["helpful"]["value"], scores["helpful"]["data_type"]) == (0.75, "numeric")
    relevant = scores["relevant"]
    assert (relevant["value"], relevant["data_type"], relevant["span_name"]) == (1.0, "boolean", "search handbook")
    assert relevant["span_id"] == _span(trace, "search handbook")
    assert (scores["topic"]["string_value"], scores["topic"]["data_type"]) == ("refunds", "categorical")
    assert (scores["feedback"]["value"], scores["feedback"]["data_type"]) == (0.0, "boolean")
    (fb,) = doc["feedback"]
    assert (fb["thumbs"], fb["comment"], fb["user_id"], fb["score_id"]) == (
        "down",
        "too slow",
        "u1",
        scores["feedback"]["id"],
    )


def test_explain_from_the_store(store: Store, tmp_path: Path) -> None:
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
        other_id = create_project(conn, "globex").id
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    trace = sample_trace(project_id)
    try:
        sink.write_sync(trace)
    finally:
        sink.close()
    _score_and_feedback(store, project_id, trace)
    with store.connect() as conn:
        doc = explain_trace(conn, project_id, trace.id)
        assert explain_trace(conn, other_id, trace.id) is None
        assert explain_trace(conn, project_id, "0" * 32) is None
    assert doc is not None
    check_sections(doc, trace)
    check_scores(doc, trace)
    json.dumps(doc)  # JSON-ready as it is


def test_a_plain_chat_explains_with_empty_sections(store: Store, tmp_path: Path) -> None:
    """A trace with no prompt, no retrieval, no guard, no tool: the sections are there, empty."""
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
    trace = TraceRecord(project_id=project_id, name="chat", source="http")
    span = trace.span("llm", "chat fake-chat")
    span.output = {"message": {"role": "assistant", "content": "Hello"}}
    span.finish()
    trace.finish()
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        sink.write_sync(trace)
    finally:
        sink.close()
    with store.connect() as conn:
        doc = explain_trace(conn, project_id, trace.id)
    assert doc is not None
    assert doc["prompt"]["name"] is None and doc["prompt"]["messages"] is None
    assert doc["answer"] == {"role": "assistant", "content": "Hello"}
    assert doc["retrieval"] == doc["guards"] == doc["tools"] == doc["scores"] == doc["feedback"] == []
    assert [p["name"] for p in doc["path"]] == ["chat fake-chat"]


# ------------------------------------------------------------------------------------------ API and CLI


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def _stored(http: TestClient, project: str | None = None) -> tuple[TraceRecord, Store]:
    state = http.app.api.state.pilothouse  # type: ignore[attr-defined]
    project_id = state.boot.project_id
    if project is not None:
        with state.store.begin() as conn:
            project_id = create_project(conn, project).id
    trace = sample_trace(project_id)
    state.sink.write_sync(trace)
    return trace, state.store


def test_explain_api_and_cli(http: TestClient) -> None:
    trace, store = _stored(http)
    _score_and_feedback(store, trace.project_id, trace)
    response = http.get(f"/api/traces/{trace.id}/explain")
    assert response.status_code == 200, response.text
    doc = response.json()
    check_sections(doc, trace)
    check_scores(doc, trace)

    as_json = runner.invoke(app, ["traces", "explain", trace.id, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == doc

    page = runner.invoke(app, ["traces", "explain", trace.id])
    assert page.exit_code == 0, page.output
    text = page.stdout
    for expected in [
        f"trace {trace.id}",
        "status ok",
        "Prompt",
        "support-answer version 3 (label production)",
        "[system] You answer refund questions.",
        "[CREDIT_CARD]",
        "Model",
        "fake-chat via fake (fake-1)",
        "max_tokens=64, temperature=0.2",
        "Retrieved context: search handbook (2 chunks",
        "handbook/refunds.md",
        "Refunds take 5 business days.",
        "Guard decisions",
        "pii-default v2",
        "CREDIT_CARD",
        "Tool calls",
        "lookup_order",
        '{"status": "refunded"}',
        "Path",
        "llm chat fake-chat  +70.0 ms  300.0 ms  ok  tokens 42→7  $0.000123",
        "Scores",
        "relevant\ttrue\tboolean\tcode\tspan search handbook",
        "Feedback",
        "thumbs down from u1",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"
    # sections in reading order
    order = [text.index(s) for s in ("Prompt", "Model", "Retrieved context", "Guard decisions", "Tool calls")]
    assert order == sorted(order) and text.index("Path") < text.index("Scores") < text.index("Feedback")


def test_another_projects_trace_is_not_found(http: TestClient) -> None:
    theirs, _ = _stored(http, project="globex")
    response = http.get(f"/api/traces/{theirs.id}/explain")
    assert response.status_code == 404 and "no trace" in response.json()["error"]["message"]
    assert http.get(f"/api/traces/{'0' * 32}/explain").status_code == 404
    result = runner.invoke(app, ["traces", "explain", theirs.id])
    assert result.exit_code == 1 and "no trace" in result.output


def test_a_gateway_call_explains_with_its_parameters_and_answer(http: TestClient) -> None:
    """What the gateway itself records (the llm span's attributes, input and output) fills the sections."""
    body = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "max_tokens": 16,
    }
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    trace_id = response.headers["x-pilothouse-trace-id"]
    http.post("/api/scores", json={"trace_id": trace_id, "name": "grounded", "value": False, "source": "judge"})
    doc = http.get(f"/api/traces/{trace_id}/explain").json()
    assert doc["trace"]["source"] == "http" and doc["prompt"]["name"] is None
    assert doc["model"]["model"] == "fake-chat" and doc["model"]["provider"] == "fake"
    assert doc["model"]["parameters"]["temperature"] == 0.3 and doc["model"]["parameters"]["max_tokens"] == 16
    assert doc["answer"]["content"] == response.json()["choices"][0]["message"]["content"]
    assert [p["kind"] for p in doc["path"]] == ["llm"] and doc["path"][0]["depth"] == 0
    assert [(s["name"], s["data_type"], s["value"]) for s in doc["scores"]] == [("grounded", "boolean", 0.0)]
