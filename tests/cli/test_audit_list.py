"""`pilothouse audit list`: filters by action and time (GET /api/audit `action`, `since`, `until`), within the
caller's project and after `after`, and details readable without --json. The server runs in this process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from pilothouse.cli import common
from pilothouse.cli.audit import details_text
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
MODELS = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The server in process; the CLI's client (with its usual error handling) talks to it with the owner key."""
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def cli(*args: str) -> Result:
    return runner.invoke(app, ["audit", "list", *args])


def events(*args: str) -> list[dict[str, Any]]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_filter_by_action_and_time(http: TestClient) -> None:
    before = time.time()
    created = [http.post("/api/keys", json={"name": name, "role": "viewer"}) for name in ("a", "b")]
    assert [c.status_code for c in created] == [201, 201]
    middle = time.time()
    time.sleep(0.01)
    assert http.delete(f"/api/keys/{created[0].json()['id']}").status_code == 200

    everything = events()  # the bootstrap's events (its owner key, the default project) come first
    assert {"key.create", "key.revoke"} <= {e["action"] for e in everything}
    mine = ("--since", str(before))
    assert [e["action"] for e in events("--action", "key.create", *mine)] == ["key.create", "key.create"]
    assert [e["action"] for e in events("--action", "key", *mine)] == ["key.create", "key.create", "key.revoke"]
    assert [e["action"] for e in events("-a", "key.revoke", "-a", "key.create", *mine)] == [
        "key.create",
        "key.create",
        "key.revoke",
    ]
    assert [e["action"] for e in events("--action", "key", "--since", str(middle))] == ["key.revoke"]
    assert [e["action"] for e in events("--action", "key", *mine, "--until", str(middle))] == ["key.create"] * 2
    assert events("--since", str(before), "--until", str(before)) == []
    assert len(events("--since", "1h")) == len(everything)  # durations before now work too
    seq = events("--action", "key.create", *mine)[0]["seq"]
    assert [e["action"] for e in events("--action", "key", "--after", str(seq))] == ["key.create", "key.revoke"]


def test_details_show_without_json(http: TestClient) -> None:
    assert http.post("/api/keys", json={"name": "ci-deploy", "role": "service"}).status_code == 201
    result = cli("--action", "key.create")
    assert result.exit_code == 0, result.output
    assert "details" in result.stdout
    assert "role=service" in result.stdout and "name=ci-deploy" in result.stdout
    assert "no audit events match" in cli("--action", "nothing.like.this").stdout


def test_details_text() -> None:
    assert details_text(None) == "" and details_text({}) == ""
    text = details_text({"reason": "p = 0.01 < 0.05", "window": {"n": 30, "mean": 1.5}, "to": 2, "ok": None})
    assert text == 'reason=p = 0.01 < 0.05  window={"mean":1.5,"n":30}  to=2  ok=null'


def test_bad_filters_are_a_4xx_naming_the_parameter(http: TestClient) -> None:
    answer = http.get("/api/audit", params={"since": "yesterday"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "since"
    answer = http.get("/api/audit", params={"until": "nan"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "until"
    answer = http.get("/api/audit", params=[("action", f"a{i}") for i in range(21)])
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "action"
    result = cli("--since", "yesterday")
    assert result.exit_code == 1 and "'since'" in result.stderr


def test_the_project_scope_still_applies(http: TestClient) -> None:
    """An admin of another project sees only its own project's events, whatever the filters."""
    assert http.post("/api/projects", json={"name": "other"}).status_code == 201
    made = http.post("/api/keys", json={"name": "its-admin", "role": "admin", "project": "other"}).json()
    assert http.post("/api/keys", json={"name": "here", "role": "viewer"}).status_code == 201
    as_admin = {"authorization": f"Bearer {made['secret']}"}
    theirs = http.get("/api/audit", params={"action": "key"}, headers=as_admin).json()["data"]
    assert [e["target"] for e in theirs] == [made["id"]]
    refused = http.get("/api/audit", params={"action": "key", "project": "default"}, headers=as_admin)
    assert refused.status_code == 403
    everywhere = events("--action", "key.create", "--project", "all")
    assert made["id"] in {e["target"] for e in everywhere} and len(everywhere) == 3  # with the bootstrap's key
    assert len({e["project_id"] for e in everywhere}) == 2
