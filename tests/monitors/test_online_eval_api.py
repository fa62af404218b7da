"""Online evaluation rules through the API and CLI (in process, SQLite): any online metric of the registry is a
scorer; a deterministic metric or an unknown name is a 400 that lists what can be used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.main import app
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()


def test_scorers_are_registry_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli_in_process(app_settings(tmp_path, [], monitor_interval_s=0), monkeypatch) as client:
        added = runner.invoke(
            app,
            [
                "monitors",
                "online-eval",
                "add",
                "rag",
                "--rate",
                "0.5",
                "--scorer",
                "groundedness",
                "--scorer",
                "answer_relevance",
                "--scorer",
                "refusal",
                "--tag",
                "prod",
                "--json",
            ],
        )
        assert added.exit_code == 0, added.output
        assert json.loads(added.output)["scorers"] == ["groundedness", "answer_relevance", "refusal"]

        bad = client.post("/api/monitors/online-eval", json={"name": "x", "rate": 1, "scorers": ["contains"]})
        assert bad.status_code == 400
        message = bad.json()["error"]["message"]
        assert "unknown scorer 'contains'" in message and "groundedness" in message and "expected answer" in message
        unknown = client.post("/api/monitors/online-eval", json={"name": "x", "rate": 1, "scorers": ["nope"]})
        assert unknown.status_code == 400 and "unknown scorer 'nope'" in unknown.json()["error"]["message"]
        twice = client.post("/api/monitors/online-eval", json={"name": "x", "rate": 1, "scorers": ["pii", "pii"]})
        assert twice.status_code == 400 and "once" in twice.json()["error"]["message"]
