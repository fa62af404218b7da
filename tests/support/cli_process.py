"""The `pilothouse` command run as a user runs it: a real process against a running server, with a key, and
none of the test process's PILOTHOUSE_* variables leaking in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.support.servers import REPO, RunningServer


def run_cli(server: RunningServer, key: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m pilothouse ARGS --url ... --api-key KEY`; never a traceback on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    cmd = [sys.executable, "-m", "pilothouse", *args, "--url", server.url, "--api-key", key]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    assert "Traceback" not in result.stderr, f"{args}:\n{result.stderr}"
    return result


def cli_ok(server: RunningServer, key: str, *args: str) -> str:
    """Its stdout; the command must succeed."""
    result = run_cli(server, key, *args)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def cli_json(server: RunningServer, key: str, *args: str) -> Any:
    return json.loads(cli_ok(server, key, *args, "--json"))


def cli_fails(server: RunningServer, key: str, *args: str) -> str:
    """Its stderr; the command must fail (with a message, not a traceback)."""
    result = run_cli(server, key, *args)
    assert result.returncode != 0, f"{args} succeeded:\n{result.stdout}"
    return result.stderr
