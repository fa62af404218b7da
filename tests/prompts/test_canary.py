"""Canary rollouts through the whole application in-process (gateway with the fake model, API, background
monitor) on SQLite and PostgreSQL: split, sticky users, feedback, comparison, rollback, stats, API errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.store.engine import Store
from tests.prompts.inprocess import FAKE_MODEL, App, running_app

PROMPT = "support-answer"


def prompt_file(system: str) -> str:
    return (
        f"name: {PROMPT}\nmodel: {FAKE_MODEL}\nmax_tokens: 16\nvariables:\n  question: {{type: string}}\n"
        f"messages:\n  - role: system\n    content: {system}\n  - role: user\n    content: '{{{{ question }}}}'\n"
    )


def push_two_versions(app: App) -> None:
    for system in ("Answer in one short sentence.", "Answer with a long essay."):
        body = {"files": [{"path": f"{PROMPT}.yaml", "content": prompt_file(system)}]}
        app.ok("POST", "/api/prompts/push", json=body)


def call(app: App, user: str) -> tuple[str, int]:
    """One gateway call with the prompt for end user `user`; the trace id and the version it used."""
    body = {"model": f"prompt:{PROMPT}@production", "variables": {"question": f"hello from {user}"}, "user": user}
    response = app.call("POST", "/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    trace_id = response.headers["x-pilothouse-trace-id"]
    trace = app.ok("GET", f"/api/traces/{trace_id}")
    assert trace["prompt_name"] == PROMPT
    return trace_id, int(trace["prompt_version"])


def label_splits(app: App, label: str = "production") -> list[dict[str, Any]]:
    labels = app.ok("GET", f"/api/prompts/{PROMPT}/labels")["data"]
    (found,) = [lbl for lbl in labels if lbl["name"] == label]
    splits: list[dict[str, Any]] = found["splits"]
    return splits


def rollback_events(app: App) -> list[dict[str, Any]]:
    events = app.ok("GET", "/api/audit", params={"limit": 1000})["data"]
    return [e for e in events if e["action"] == "prompt.canary.rollback"]


def canary_rule(min_samples: int = 8) -> dict[str, Any]:
    return {"metric": "score:helpful", "min_samples": min_samples, "alpha": 0.05}


def start(app: App, weight: float = 50, rule: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"baseline": 1, "candidate": 2, "weight": weight, "rollback_rule": rule or canary_rule()}
    result: dict[str, Any] = app.ok("PUT", f"/api/prompts/{PROMPT}/labels/production/canary", json=body)
    return result


def traffic_with_feedback(app: App, users: int = 40) -> dict[str, int]:
    """Calls from `users` distinct users; feedback 1 on the baseline's answers and 0 on the candidate's."""
    seen: dict[str, int] = {}
    for i in range(users):
        trace_id, version = call(app, f"user-{i}")
        seen[f"user-{i}"] = version
        score = {"trace_id": trace_id, "name": "helpful", "value": 1.0 if version == 1 else 0.0}
        app.ok("POST", "/api/scores", status=201, json=score)
    return seen


@pytest.fixture
def app(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    with running_app(store, tmp_path / "data", monkeypatch) as running:
        push_two_versions(running)
        yield running


def test_canary_split_feedback_check_and_rollback(app: App) -> None:
    started = start(app)
    assert started["status"] == "insufficient_samples"
    assert (started["baseline"], started["candidate"], started["weight"]) == (1, 2, 50)
    assert started["rollback_rule"] == {**canary_rule(), "baseline": 1}
    assert label_splits(app) == [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]

    seen = traffic_with_feedback(app)
    assert set(seen.values()) == {1, 2}  # both versions get traffic
    for user in list(seen)[:10]:  # sticky: the same end user always gets the same version
        assert call(app, user)[1] == seen[user]

    live = app.ok("GET", f"/api/prompts/{PROMPT}/labels/production/canary")
    assert live["status"] == "worse" and not live["rolled_back"]  # GET only looks
    assert live["decision"]["test"]["name"] == "msprt" and live["decision"]["test"]["p_value"] < 0.05
    assert live["samples"]["baseline"] + live["samples"]["candidate"] == 40
    assert label_splits(app) == [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]

    checked = app.ok("POST", f"/api/prompts/{PROMPT}/labels/production/canary/check")
    assert checked["status"] == "rolled_back" and checked["rolled_back"]
    assert checked["splits"] == [{"version": 1, "weight": 100}]
    assert label_splits(app) == [{"version": 1, "weight": 100}]
    (event,) = rollback_events(app)
    assert event["details"]["reason"] == checked["reason"]
    assert event["details"]["decision"]["samples"] == checked["decision"]["samples"]
    assert event["details"]["decision"]["decision"] == "rollback"
    assert "score:helpful" in checked["reason"] and "rolled back to v1" in checked["reason"]
    assert event["details"]["to"] == [{"version": 1, "weight": 100}]
    # the next calls, including from users the candidate had, all use the baseline
    assert {call(app, user)[1] for user in seen} == {1}
    again = app.ok("POST", f"/api/prompts/{PROMPT}/labels/production/canary/check")
    assert again["status"] == "no_canary" and len(rollback_events(app)) == 1

    stats = app.ok("GET", f"/api/prompts/{PROMPT}/stats", params={"since": "1h"})
    by_version = {v["version"]: v["total"] for v in stats["versions"]}
    assert sum(t["calls"] for t in by_version.values()) == 40 + 10 + 40
    assert by_version[1]["scores"]["helpful"]["mean"] == 1.0
    assert by_version[2]["scores"]["helpful"]["mean"] == 0.0
    assert by_version[1]["latency_ms"]["p50"] is not None and by_version[1]["error_rate"] == 0
    assert by_version[1]["cost_per_call_usd"] == "0"  # the fake model has no price
    only_label = app.ok("GET", f"/api/prompts/{PROMPT}/stats", params={"label": "production"})
    assert [v["version"] for v in only_label["versions"]] == [1] and only_label["label"] == "production"


def test_the_servers_background_monitor_rolls_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_app(store, tmp_path / "data", monkeypatch, canary_check_interval_s=0.1) as app:
        push_two_versions(app)
        start(app)
        seen = traffic_with_feedback(app, users=30)
        deadline = time.monotonic() + 15
        while len(label_splits(app)) == 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert label_splits(app) == [{"version": 1, "weight": 100}]
        (event,) = rollback_events(app)
        assert event["actor"] == "system:canary-monitor"
        assert {call(app, user)[1] for user in seen} == {1}  # the gateway's cache was dropped at once


def test_an_equal_candidate_is_kept(app: App) -> None:
    start(app, rule=canary_rule(min_samples=5))
    for i in range(30):
        trace_id, _ = call(app, f"user-{i}")
        app.ok("POST", "/api/scores", status=201, json={"trace_id": trace_id, "name": "helpful", "value": i % 2})
    checked = app.ok("POST", f"/api/prompts/{PROMPT}/labels/production/canary/check")
    assert checked["status"] in ("continue", "promote") and not checked["rolled_back"]
    assert len(label_splits(app)) == 2 and rollback_events(app) == []


def test_canary_api_errors(app: App) -> None:
    path = f"/api/prompts/{PROMPT}/labels/production/canary"

    def error(status: int, body: dict[str, Any], *, key: str | None = None, url: str = path) -> dict[str, Any]:
        response = app.call("PUT", url, json=body, key=key)
        assert response.status_code == status, f"{body}: {response.status_code} {response.text}"
        err: dict[str, Any] = response.json()["error"]
        return err

    good = {"baseline": 1, "candidate": 2, "weight": 10, "rollback_rule": canary_rule()}
    assert "different" in error(400, {**good, "candidate": 1})["message"]
    assert error(422, {**good, "weight": 0})["param"] == "weight"
    assert error(422, {**good, "weight": 100})["param"] == "weight"
    assert error(404, {**good, "candidate": 7})["code"] == "prompt_version_not_found"
    assert "rollback metric" in error(400, {**good, "rollback_rule": {"metric": "vibes"}})["message"]
    assert "min_samples" in error(400, {**good, "rollback_rule": {**canary_rule(), "min_samples": 1}})["message"]
    assert "alpha" in error(400, {**good, "rollback_rule": {**canary_rule(), "alpha": 2}})["message"]
    bad_effect = {**canary_rule(), "min_effect_rel": -0.1}
    assert "min_effect_rel" in error(400, {**good, "rollback_rule": bad_effect})["message"]
    assert error(400, {**good, "rollback_rule": {**canary_rule(), "bucket_s": 0}})["param"] == "rollback_rule"
    assert error(404, good, url="/api/prompts/nope/labels/production/canary")["code"] == "prompt_not_found"
    error(403, good, key=app.key("viewer"))
    error(403, good, key=app.key("service"))
    assert app.call("POST", f"{path}/check", key=app.key("viewer")).status_code == 403
    assert app.call("GET", "/api/prompts/support-answer/labels/staging/canary").status_code == 404
    # a protected label needs an admin to split
    app.ok("POST", f"/api/prompts/{PROMPT}/labels/production/protect")
    developer = app.key("developer")
    assert error(403, good, key=developer)["code"] == "label_protected"
    # nothing above changed the label
    assert label_splits(app) == [{"version": 1, "weight": 100}]
    # without a rule: a plain weighted rollout, reported but never judged
    plain = app.ok("PUT", path, json={**good, "rollback_rule": None, "weight": 12.5})
    assert plain["status"] == "no_rule" and plain["rollback_rule"] is None
    assert label_splits(app) == [{"version": 1, "weight": 87.5}, {"version": 2, "weight": 12.5}]
    assert app.ok("POST", f"{path}/check")["status"] == "no_rule"


def test_stats_api_errors(app: App) -> None:
    assert app.call("GET", "/api/prompts/nope/stats").status_code == 404
    response = app.call("GET", f"/api/prompts/{PROMPT}/stats", params={"since": "last tuesday"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "since"
    response = app.call("GET", f"/api/prompts/{PROMPT}/stats", params={"until": "soon"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "until"
    response = app.call("GET", f"/api/prompts/{PROMPT}/stats", params={"label": "staging"})
    assert response.status_code == 404 and response.json()["error"]["param"] == "label"
    empty = app.ok("GET", f"/api/prompts/{PROMPT}/stats", key=app.key("viewer"))
    assert empty["versions"] == [] and empty["prompt"] == PROMPT


def test_canary_status_route_and_sdk(app: App) -> None:
    start(app)
    traffic_with_feedback(app, users=30)
    status = app.ok("GET", f"/api/prompts/{PROMPT}/labels/production/canary/status", key=app.key("viewer"))
    assert status["status"] == "worse" and not status["rolled_back"]  # looking never acts
    decision = status["decision"]
    assert decision["decision"] == "rollback" and decision["baseline"]["mean"] == 1.0
    assert decision["candidate"]["mean"] == 0.0 and decision["interval"]["upper"] < 0
    assert [e["action"] for e in status["events"]] == ["prompt.canary.start"]
    assert status["checked_at"] >= status["since"]
    assert len(label_splits(app)) == 2
    missing = app.call("GET", f"/api/prompts/{PROMPT}/labels/staging/canary/status")
    assert missing.status_code == 404
