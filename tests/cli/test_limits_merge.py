"""`pilothouse limits set` changes only the limits it names: a later --max-tokens keeps --rpm/--tpm, and a
limit is removed only by its --clear-* flag (POST /api/limits: an omitted field is kept, null removes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
MODELS = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The server in process; the CLI's client (with its usual error handling) talks to it."""
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def limits(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["limits", "set", "--project", "default", *args, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_max_tokens_after_rpm_and_tpm_keeps_them(http: TestClient) -> None:
    first = limits("--rpm", "60", "--tpm", "20000")
    later = limits("--max-tokens", "1024")
    assert later["id"] == first["id"]
    assert (later["rpm"], later["tpm"], later["max_tokens"]) == (60, 20000, 1024)
    changed = limits("--rpm", "30")
    assert (changed["rpm"], changed["tpm"], changed["max_tokens"]) == (30, 20000, 1024)


def test_a_limit_is_removed_only_by_its_clear_flag(http: TestClient) -> None:
    limits("--rpm", "60", "--tpm", "20000", "--max-tokens", "512")
    cleared = limits("--clear-rpm", "--clear-max-tokens")
    assert (cleared["rpm"], cleared["tpm"], cleared["max_tokens"]) == (None, 20000, None)
    refused = runner.invoke(app, ["limits", "set", "--project", "default", "--clear-tpm"])
    assert refused.exit_code == 1 and "delete them instead" in refused.stderr  # not a silent delete
    both = runner.invoke(app, ["limits", "set", "--project", "default", "--rpm", "5", "--clear-rpm"])
    assert both.exit_code == 2 and "both set and cleared" in both.stderr


def test_the_api_keeps_omitted_fields_and_removes_null_ones(http: TestClient) -> None:
    body = {"scope": "project", "subject": "default"}
    assert http.post("/api/limits", json={**body, "rpm": 10, "tpm": 100}).status_code == 200
    kept = http.post("/api/limits", json={**body, "max_tokens": 7}).json()
    assert (kept["rpm"], kept["tpm"], kept["max_tokens"]) == (10, 100, 7)
    removed = http.post("/api/limits", json={**body, "tpm": None}).json()
    assert (removed["rpm"], removed["tpm"], removed["max_tokens"]) == (10, None, 7)
    nothing = http.post("/api/limits", json=body)
    assert nothing.status_code == 400 and nothing.json()["error"]["param"] == "rpm"
