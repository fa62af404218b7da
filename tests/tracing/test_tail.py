"""`pilothouse traces tail [-f]` on an in-process server: the newest traces oldest first, then (following) the
traces stored afterwards, including one that started before the newest shown, each once, filtered, and a
clean end on Ctrl-C."""

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
from pilothouse.sdk import trace_review
from pilothouse.tracing.model import TraceRecord
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
MODELS = [ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake-1")])]
T0 = 1_700_000_000.0


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def _store(http: TestClient, name: str, started: float, *, model: str = "fake-chat") -> str:
    state = http.app.api.state.pilothouse  # type: ignore[attr-defined]
    trace = TraceRecord(project_id=state.boot.project_id, name=name, source="sdk", started_at=started, model=model)
    trace.ended_at = started + 0.25
    state.sink.write_sync(trace)
    return trace.id


def test_tail_prints_the_newest_oldest_first(http: TestClient) -> None:
    ids = [_store(http, f"call-{i}", T0 + i) for i in range(5)]
    result = runner.invoke(app, ["traces", "tail", "-n", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ids[2:]
    assert "call-4" in lines[-1] and "250.0 ms" in lines[-1] and "ok" in lines[-1]
    as_json = runner.invoke(app, ["traces", "tail", "-n", "2", "--json"])
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == ids[3:]
    bad = runner.invoke(app, ["traces", "tail", "--filter", "colour=blue"])
    assert bad.exit_code == 2 and "KEY one of model" in bad.output


def test_tail_follow_prints_new_traces_once_and_ends_on_ctrl_c(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _store(http, "before", T0)
    _store(http, "other-model", T0 + 0.5, model="other")
    polls: list[float] = []
    late: list[str] = []

    def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:  # between polls: a newer trace, and one that started earlier but ended later
            late.append(_store(http, "newer", T0 + 2))
            late.append(_store(http, "long-running", T0 - 1))
            _store(http, "filtered-out", T0 + 3, model="other")
        elif len(polls) == 2:
            late.append(_store(http, "newest", T0 + 4))
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(trace_review, "_sleep", fake_sleep)
    result = runner.invoke(app, ["traces", "tail", "-f", "--interval", "0.5", "--filter", "model=fake-chat", "--json"])
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [t["id"] for t in shown] == [first, late[1], late[0], late[2]]  # each poll's new ones by start
    assert {t["model"] for t in shown} == {"fake-chat"}
    assert polls == [0.5, 0.5, 0.5]
    assert "Traceback" not in result.output
