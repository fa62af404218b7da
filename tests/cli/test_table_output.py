"""The CLI's output contract (README, "Manage it"): piped, a table is tab-separated lines (`# title`, a header row,
one row per line, values never wrapped or cut) so `pilothouse cost report --by model | grep MODEL` prints the row;
on a terminal it is a Rich table; every command that prints data takes --json.

CliRunner's stdout is not a terminal, as a pipe is not."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.console import Console
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
LONG = "smollm2-135m-instruct-with-a-name-much-longer-than-any-terminal-column-would-ever-hold-q4"
"""A model name wider than the 80 columns Rich used to fold piped tables at."""
MODELS = [ModelEntry(name=LONG, deployments=[Deployment(provider="fake", model="echo")])]


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The server in process; the CLI's client (with its usual error handling) talks to it."""
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def piped(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    assert "\x1b" not in result.stdout, "no terminal escapes in piped output"
    return result.stdout


def grep(output: str, needle: str) -> list[list[str]]:
    """What `| grep NEEDLE | cut -f...` sees: the matching lines, split on tabs."""
    return [line.split("\t") for line in output.splitlines() if needle in line]


def test_piped_models_list_is_one_tab_separated_row_per_model(http: TestClient) -> None:
    out = piped("models", "list")
    assert out.splitlines()[:2] == ["# Models", "id\tprovider"]
    assert grep(out, "smollm2-135m") == [[LONG, "fake"]]  # whole, on one line


def test_piped_cost_report_by_model_greps_to_the_row(http: TestClient) -> None:
    for _ in range(2):
        body = {"model": LONG, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    deadline = time.monotonic() + 10
    while json.loads(piped("cost", "report", "--by", "model", "--json"))["total"]["requests"] < 2:
        assert time.monotonic() < deadline, "the two calls never reached the cost report"
        time.sleep(0.05)
    out = piped("cost", "report", "--by", "model")
    lines = out.splitlines()
    assert lines[0].startswith("# Cost by model since ")
    header = lines[1].split("\t")
    assert header[:3] == ["group", "requests", "errors"] and len(header) == 12
    [row] = grep(out, "smollm2-135m")
    assert len(row) == len(header) and row[0] == LONG and row[1] == "2" and row[2] == "0.0%"
    [total] = [line.split("\t") for line in lines if line.startswith("total\t")]
    assert total[1] == "2"


def test_a_value_with_tabs_newlines_or_markup_stays_one_row(capsys: pytest.CaptureFixture[str]) -> None:
    common.table("T", ["a", "b"], [["x\ty\nz\\w", None], ["[green]pass[/green]", 3], ["team[/b]", "[x"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["# T", "a\tb", "x\\ty\\nz\\\\w\t-", "pass\t3", "team[/b]\t[x"]  # not markup: data


def test_on_a_terminal_a_table_is_a_rich_table(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=screen, force_terminal=True, width=60, soft_wrap=True))
    common.table("Models", ["id", "provider"], [[LONG, "fake"]])
    shown = screen.getvalue()
    assert "┃" in shown and "Models" in shown and "\t" not in shown  # box drawing, a title, no tabs
    assert LONG not in shown  # folded to the terminal's width, as before
    screen.truncate(0)
    common.table("Odd", ["name"], [["team[/b]"], ["[green]ok[/green]"]])  # data that is not markup is shown
    shown = screen.getvalue()
    assert "team[/b]" in shown and "ok" in shown and "[green]" not in shown


def _leaves(group: Any, ctx: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if hasattr(command, "list_commands"):
            yield from _leaves(command, ctx, [*path, name])
        else:
            yield " ".join([*path, name]), command


def test_every_command_that_prints_data_takes_json() -> None:
    root = typer.main.get_command(app)
    commands = dict(_leaves(root, typer.Context(root), []))
    # a server's log, a version string, a dataset file (JSONL or CSV), a Markdown report, a person's answers
    no_data = {"up", "version", "dataset pull", "eval report", "eval annotate"}
    missing = [name for name, c in commands.items() if name not in no_data and "--json" not in _flags(c)]
    assert missing == []
    assert len(commands) > 30


def _flags(command: Any) -> list[str]:
    return [flag for param in command.params for flag in getattr(param, "opts", [])]
