"""Scores (feedback, evaluations) on SQLite and PostgreSQL: the repository and /api/scores with its errors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.scores import ScoreTargetMissing, add_score, list_scores
from pilothouse.store.tables import scores
from pilothouse.store.traces import BadCursor
from tests.prompts.inprocess import FAKE_MODEL, App, running_app
from tests.prompts.test_monitor import add_traces

# ------------------------------------------------------------------------------------------ repository


def test_add_and_list_scores(store: Store) -> None:
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
        (trace,) = add_traces(conn, project_id, 1, 1, start=1000.0)
        first = add_score(conn, project_id=project_id, trace_id=trace, name="helpful", value=1, author="key_a")
        second = add_score(
            conn, project_id=project_id, trace_id=trace, name="topic", string_value="billing", source="judge"
        )
    assert first.id.startswith("score_") and first.value == 1.0 and first.string_value is None
    assert first.source == "human" and first.author == "key_a"
    assert second.value is None and second.string_value == "billing"
    with store.connect() as conn:
        page, cursor = list_scores(conn, project_id, trace_id=trace)
        assert [s.id for s in page] == [second.id, first.id] and cursor is None
        assert [s.id for s in list_scores(conn, project_id, name="helpful")[0]] == [first.id]
        assert [s.id for s in list_scores(conn, project_id, source="judge")[0]] == [second.id]
        assert list_scores(conn, "proj_other")[0] == []
        one, cursor = list_scores(conn, project_id, limit=1)
        assert [s.id for s in one] == [second.id] and cursor is not None
        rest, end = list_scores(conn, project_id, limit=1, cursor=cursor)
        assert [s.id for s in rest] == [first.id] and end is None
        with pytest.raises(BadCursor):
            list_scores(conn, project_id, cursor="garbage")
    assert first.to_dict()["trace_id"] == trace


def test_scores_need_a_trace_of_the_project_and_a_well_formed_value(store: Store) -> None:
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
        other_id = create_project(conn, "globex").id
        (trace,) = add_traces(conn, project_id, 1, 1, start=1000.0)
    bad: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"trace_id": "f" * 32, "value": 1.0}, ScoreTargetMissing, "no trace"),
        ({"trace_id": trace, "value": 1.0, "project_id": other_id}, ScoreTargetMissing, "no trace"),
        ({"trace_id": trace, "value": 1.0, "span_id": "0" * 16}, ScoreTargetMissing, "no span"),
        ({"trace_id": trace}, ValueError, "exactly one"),
        ({"trace_id": trace, "value": 1.0, "string_value": "x"}, ValueError, "exactly one"),
        ({"trace_id": trace, "value": math.inf}, ValueError, "finite"),
        ({"trace_id": trace, "value": math.nan}, ValueError, "finite"),
        ({"trace_id": trace, "value": 1.0, "source": "robot"}, ValueError, "source"),
    ]
    for kwargs, error, message in bad:
        args = {"project_id": project_id, "name": "helpful", **kwargs}
        with pytest.raises(error, match=message), store.begin() as conn:
            add_score(conn, **args)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scores)).scalar_one() == 0


# ------------------------------------------------------------------------------------------ the API


@pytest.fixture
def app(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    with running_app(store, tmp_path / "data", monkeypatch) as running:
        yield running


def a_trace(app: App) -> tuple[str, str]:
    """One chat through the gateway; returns its trace id and its llm span id."""
    response = app.call(
        "POST", "/v1/chat/completions", json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200, response.text
    trace_id = response.headers["x-pilothouse-trace-id"]
    span_id = app.ok("GET", f"/api/traces/{trace_id}")["spans"][0]["id"]
    return trace_id, span_id


def test_score_api_round_trip(app: App) -> None:
    trace_id, span_id = a_trace(app)
    service = app.key("service")
    created = app.ok(
        "POST",
        "/api/scores",
        status=201,
        key=service,
        json={"trace_id": trace_id, "name": "helpful", "value": 1, "comment": "solved it"},
    )
    assert created["value"] == 1.0 and created["source"] == "human" and created["comment"] == "solved it"
    assert created["author"].startswith("key_") and created["span_id"] is None
    judged = app.ok(
        "POST",
        "/api/scores",
        status=201,
        json={"trace_id": trace_id, "span_id": span_id, "name": "tone", "string_value": "friendly", "source": "judge"},
    )
    assert judged["span_id"] == span_id and judged["value"] is None
    viewer = app.key("viewer")
    listed = app.ok("GET", "/api/scores", key=viewer, params={"trace_id": trace_id})
    assert [s["id"] for s in listed["data"]] == [judged["id"], created["id"]] and listed["next_cursor"] is None
    assert [s["id"] for s in app.ok("GET", "/api/scores", params={"name": "helpful"})["data"]] == [created["id"]]
    assert [s["id"] for s in app.ok("GET", "/api/scores", params={"source": "judge"})["data"]] == [judged["id"]]
    page = app.ok("GET", "/api/scores", params={"limit": 1})
    assert len(page["data"]) == 1 and page["next_cursor"]
    rest = app.ok("GET", "/api/scores", params={"limit": 1, "cursor": page["next_cursor"]})
    assert [s["id"] for s in rest["data"]] == [created["id"]]


def test_score_api_errors(app: App) -> None:
    trace_id, _ = a_trace(app)
    outsider = app.key("admin", project=app.ok("POST", "/api/projects", status=201, json={"name": "globex"})["id"])

    def error(status: int, body: object, *, key: str | None = None, raw: str | None = None) -> dict[str, object]:
        kwargs: dict[str, Any] = (
            {"content": raw, "headers": {"content-type": "application/json"}} if raw else {"json": body}
        )
        response = app.call("POST", "/api/scores", key=key, **kwargs)
        assert response.status_code == status, f"{body or raw}: {response.status_code} {response.text}"
        err: dict[str, object] = response.json()["error"]
        return err

    ok = {"trace_id": trace_id, "name": "helpful", "value": 1.0}
    assert "no trace" in str(error(404, {**ok, "trace_id": "0" * 32})["message"])
    assert error(404, ok, key=outsider)["param"] == "trace_id"  # another project's trace does not exist for it
    assert error(404, {**ok, "span_id": "0" * 16})["param"] == "span_id"
    assert "exactly one" in str(error(422, {**ok, "string_value": "yes"})["message"])
    assert "exactly one" in str(error(422, {"trace_id": trace_id, "name": "helpful"})["message"])
    assert error(422, {**ok, "value": "very"})["param"] == "value"
    assert error(422, {**ok, "source": "robot"})["param"] == "source"
    assert error(422, {**ok, "name": ""})["param"] == "name"
    assert error(422, {**ok, "name": "has spaces"})["param"] == "name"
    assert error(422, {**ok, "extra": 1})["param"] == "extra"
    for raw in ('{"trace_id": "%s", "name": "h", "value": NaN}', '{"trace_id": "%s", "name": "h", "value": Infinity}'):
        assert error(400, None, raw=raw % trace_id)["code"] == "json_number_out_of_range"  # refused at the boundary
    error(403, ok, key=app.key("viewer"))
    response = app.http.post("/api/scores", json=ok)
    assert response.status_code == 401
    assert app.call("GET", "/api/scores", params={"cursor": "nope"}).status_code == 400
    assert app.call("GET", "/api/scores", params={"limit": 0}).status_code == 422
    assert app.ok("GET", "/api/scores")["data"] == []  # nothing was stored by the failures
