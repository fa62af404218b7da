"""The CLI starts fast because it imports only what the command needs (not timed here: bench/cli_startup.py times
it); and every option and argument of every command says what it is for."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from pilothouse.cli.main import app

HEAVY = ("openai", "fastapi", "starlette", "uvicorn", "sqlalchemy", "numpy", "jinja2", "yaml", "jsonschema")
"""What the server, the scenario runner or the cost reports need, and no command's start-up should load."""

_PROBE = """
import json, sys
from pilothouse.cli.main import app
for argv in {argvs!r}:
    try:
        app(argv, prog_name="pilothouse")
    except SystemExit as exc:
        assert exc.code in (0, None), (argv, exc.code)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(*argvs: list[str]) -> set[str]:
    """The modules a fresh interpreter has loaded after running these CLI invocations."""
    code = _PROBE.format(argvs=list(argvs))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_help_and_version_import_nothing_heavy() -> None:
    loaded = _modules_after(["--help"], ["version"], ["keys", "--help"], ["prompt", "--help"], ["up", "--help"])
    assert _heavy(loaded) == []
    assert "pilothouse.server.app" not in loaded and "pilothouse.prompts.testing.http_executor" not in loaded
    assert "httpx" not in loaded, "the HTTP client is only needed once a command talks to the server"


def test_a_command_loads_only_its_own_group() -> None:
    loaded = _modules_after(["version"], ["keys", "--help"])
    assert "pilothouse.cli.keys" in loaded
    others = ("audit", "budgets", "budgets_reconcile", "cost", "models", "prompt", "prompt_test", "scores", "traces")
    assert sorted(m for m in loaded if m.removeprefix("pilothouse.cli.") in others) == []


def test_importing_the_sdk_is_light() -> None:
    """`from pilothouse import Pilothouse` (the SDK) loads httpx only when a client is made."""
    code = "import json, sys; from pilothouse import Pilothouse, PilothouseError;print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(out.stdout))
    assert _heavy(loaded) == [] and "httpx" not in loaded


def test_a_management_command_loads_the_http_client_but_not_the_server() -> None:
    """`keys list` against nothing: it fails to connect (exit 1), having loaded httpx and nothing heavier."""
    code = (
        "import json, sys\n"
        "from pilothouse.cli.main import app\n"
        "try:\n"
        "    app(['keys', 'list', '--url', 'http://127.0.0.1:9', '--api-key', 'ph-x'], prog_name='pilothouse')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 1, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "httpx" in loaded
    assert _heavy(loaded) == []


# ---------------------------------------------------------------------------------------------- help text


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):  # through the group's own API: the root loads its groups lazily
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "pilothouse" for p, _ in COMMANDS])
def test_every_option_and_argument_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"`pilothouse {' '.join(path)}` has no help text"
    for param in command.params:
        text = getattr(param, "help", None)
        assert text and text.strip(), f"`pilothouse {' '.join(path)}`: {param.name} has no help text"


def test_the_walk_sees_the_commands_it_should() -> None:
    """A walk that found no parameters would pass the test above without checking anything."""
    paths = {p for p, _ in COMMANDS}
    assert {("audit", "list"), ("prompt", "stats"), ("keys", "create"), ("up",)} <= paths
    assert sum(len(c.params) for _, c in COMMANDS) > 100
