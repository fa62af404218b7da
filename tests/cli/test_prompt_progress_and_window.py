"""`prompt promote` shows a spinner with what the server is running and the elapsed time on a terminal, and
nothing extra when its output is piped; `prompt stats --until` ends the window. The server runs in this process."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from pilothouse.cli import common, prompt_test
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process
from tests.support.servers import start_server

runner = CliRunner()
MODELS = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]
NAME = "support-answer"
SERVER_CONFIG = """\
include_default_models = false
canary_check_interval_s = 0

[local]
preload = false

[[models]]
name = "m"
deployments = [{provider = "fake", model = "echo"}]
"""
TESTS = """\
- name: parcel
  variables: {question: "Where is my parcel?"}
- name: refund
  variables: {question: "Can I get a refund?"}
"""


def prompt_file(system: str) -> str:
    return (
        f"name: {NAME}\nmodel: m\nvariables:\n  question: {{type: string}}\n"
        f"messages:\n  - role: system\n    content: {system}\n  - role: user\n    content: '{{{{ question }}}}'\n"
    )


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        for system in ("Be brief.", "Be very brief."):
            files = [{"path": f"{NAME}.yaml", "content": prompt_file(system)}]
            files.append({"path": f"{NAME}.tests.yaml", "content": TESTS})
            assert client.post("/api/prompts/push", json={"files": files}).status_code == 200
        yield client


def cli(*args: str) -> Result:
    return runner.invoke(app, ["prompt", *args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def test_promote_piped_prints_nothing_extra(http: TestClient) -> None:
    result = ok(cli("promote", NAME, "2", "--to", "staging"))
    assert result.stderr == ""  # no spinner, no control sequences: stderr is not a terminal here
    assert "\x1b" not in result.stdout and "running" not in result.stdout
    assert "staging" in result.stdout


def test_promote_on_a_terminal_shows_what_runs_and_for_how_long(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(prompt_test, "err_console", Console(file=screen, force_terminal=True, width=200))
    result = ok(cli("promote", NAME, "2", "--to", "staging"))
    shown = screen.getvalue()
    assert f"running 2 scenario tests of {NAME} v2 and of its current 'staging' version on the server" in shown
    assert "0:00:0" in shown  # the elapsed time column
    assert "\x1b[?25l" in shown  # a live display (cursor hidden while it spins), removed when done
    assert "staging" in result.stdout


@pytest.mark.slow
def test_prompt_test_on_a_terminal_shows_each_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prompt test` calls the gateway over HTTP: a real `pilothouse up`."""
    config = tmp_path / "pilothouse.toml"
    config.write_text(SERVER_CONFIG)
    server = start_server(tmp_path / "data", config=config)
    try:
        folder = tmp_path / "prompts"
        folder.mkdir()
        (folder / f"{NAME}.yaml").write_text(prompt_file("Be brief."))
        (folder / f"{NAME}.tests.yaml").write_text(TESTS)
        on = ["--url", server.url, "--api-key", server.admin_key]
        ok(runner.invoke(app, ["prompt", "push", str(folder), *on]))
        screen = io.StringIO()
        monkeypatch.setattr(prompt_test, "err_console", Console(file=screen, force_terminal=True, width=200))
        ok(cli("test", f"{NAME}@1", *on))
        shown = screen.getvalue()
        assert "✓" in shown and "parcel" in shown and "refund" in shown and "2/2" in shown
        monkeypatch.undo()
        piped = ok(cli("test", f"{NAME}@1", *on))
        assert "✓" not in piped.stderr and "✓" not in piped.stdout  # the table says PASS; no progress marks
        assert "2/2 cases passed" in piped.stdout
    finally:
        server.stop()


def _stats(*args: str) -> dict[str, Any]:
    return dict(json.loads(ok(cli("stats", NAME, "--json", *args)).stdout))


def _calls(stats: dict[str, Any]) -> int:
    return sum(int(v["total"]["calls"]) for v in stats["versions"])


def test_stats_until_ends_the_window(http: TestClient) -> None:
    before = time.time()
    body = {"model": f"prompt:{NAME}@latest", "variables": {"question": "hello"}}
    assert http.post("/v1/chat/completions", json=body).status_code == 200
    after = time.time() + 1
    assert _calls(_stats("--since", "1h")) == 1
    ended = _stats("--since", "1h", "--until", str(before))
    assert ended["until"] == pytest.approx(before) and _calls(ended) == 0
    assert _calls(_stats("--since", "1h", "--until", str(after))) == 1
    table = ok(cli("stats", NAME, "--since", "1h", "--until", str(before))).stdout
    assert " until " in table and "no calls in this window" in table
    bad = cli("stats", NAME, "--until", "tomorrow")
    assert bad.exit_code == 1 and "'until'" in bad.stderr
