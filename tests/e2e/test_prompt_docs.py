"""docs/prompts.md's shell blocks run in order as one walkthrough, as written, against a fresh project on the
session server (only the server's address differs), and so does the README's `cost estimate` line.

Every ```bash block of the page is part of the walkthrough: `pilothouse ...` lines run in process through the
CLI (with PILOTHOUSE_URL and PILOTHOUSE_API_KEY set, as a user would), other lines and heredocs through bash,
in one working folder. `pilothouse up` is the one line skipped: the fixture started the server."""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.prompts.folder_state import STATE_FILE
from tests.support.servers import REPO, RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

DOCS_URL = "http://127.0.0.1:7300"


@dataclass(frozen=True)
class Step:
    """One command of the walkthrough: a `pilothouse` command (argv) or a shell command (script)."""

    text: str
    argv: list[str] | None = None


def bash_blocks(path: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def steps(block: str) -> list[Step]:
    """The commands of a block: heredocs (`<<'EOF'` to `EOF`) and lines (with `\\` continuations);
    comments and blanks dropped."""
    out: list[Step] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):  # a continued line
            line = line[:-1] + lines[i].strip()
            i += 1
        if not line or line.startswith("#"):
            continue
        if "<<'EOF'" in line:
            end = lines.index("EOF", i)
            out.append(Step("\n".join([line, *lines[i:end], "EOF"]) + "\n"))
            i = end + 1
        elif line.startswith("pilothouse "):
            out.append(Step(line, shlex.split(line, comments=True)[1:]))
        else:
            out.append(Step(line))
    return out


def new_project_key(server: RunningServer) -> str:
    """An admin key of a new project on the server (the walkthrough protects labels, which needs admin)."""
    name = f"docs-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30) as http:
        assert http.post("/api/projects", json={"name": name}).status_code == 201
        resp = http.post("/api/keys", json={"name": "docs-admin", "role": "admin", "project": name})
        assert resp.status_code == 201, resp.text
        secret: str = resp.json()["secret"]
    return secret


def test_steps_are_parsed_as_a_shell_would() -> None:
    block = "mkdir x \\\n  y\ncat > x/a <<'EOF'\nname: a # kept\nEOF\n"
    block += 'pilothouse prompt render a --var q="Hi there"   # note\n'
    assert steps(block) == [
        Step("mkdir x y"),
        Step("cat > x/a <<'EOF'\nname: a # kept\nEOF\n"),
        Step(
            'pilothouse prompt render a --var q="Hi there"   # note', ["prompt", "render", "a", "--var", "q=Hi there"]
        ),
    ]


def test_the_prompts_walkthrough_runs_in_order(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_project_key(server)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common.console, "width", 250)
    env = {"PILOTHOUSE_URL": server.url, "PILOTHOUSE_API_KEY": key, "PILOTHOUSE_DATA_DIR": str(tmp_path / ".ph")}
    for name in ("PILOTHOUSE_CONFIG", "PILOTHOUSE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    outputs: list[tuple[str, str]] = []

    def run(step: Step) -> str:
        if step.argv is not None:
            result = runner.invoke(app, step.argv, env=env)
            output = result.stdout + result.stderr
            assert result.exit_code == 0, f"{step.text}\nexit {result.exit_code}\n{output}\n{result.exception!r}"
        else:
            shell = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", step.text.replace(DOCS_URL, server.url)],
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
                capture_output=True,
                text=True,
                timeout=120,
            )
            output = shell.stdout + shell.stderr
            assert shell.returncode == 0, f"{step.text}\nexit {shell.returncode}\n{output}"
            assert '"error"' not in shell.stdout, f"{step.text}\n{output}"
        outputs.append((step.text, output))
        return output

    blocks = bash_blocks(REPO / "docs" / "prompts.md")
    assert len(blocks) >= 6
    for block in blocks:
        for step in steps(block):
            if step.argv is not None and step.argv[:1] == ["up"]:
                continue  # the fixture's server
            run(step)

    def output_of(prefix: str, nth: int = 0) -> str:
        return [out for text, out in outputs if text.startswith(prefix)][nth]

    # What the comments in the walkthrough say each command does.
    assert "new version 1" in output_of("pilothouse prompt push prompts/ -m")
    assert "unchanged (v1)" in output_of("pilothouse prompt push prompts/", 1)
    assert "source updated, no new version (v1)" in output_of("pilothouse prompt push prompts/", 2)
    assert "unchanged" in output_of("pilothouse prompt pull prompts/") and "written" not in output_of(
        "pilothouse prompt pull prompts/"
    )
    assert "new version 2" in output_of('pilothouse prompt push prompts/ -m "shorter answers"')
    assert "tests created (2 cases)" in output_of("pilothouse prompt push prompts/", 4)
    assert "moved" in output_of("pilothouse prompt promote")

    folder = tmp_path / "prompts"
    assert (tmp_path / "production" / "support-answer.yaml").read_text().endswith("# Owner: the support team\n")
    assert not (tmp_path / "production" / "support-answer.yaml.bak").exists()
    assert (tmp_path / STATE_FILE).exists() is False and (folder / STATE_FILE).is_file()
    assert "<testsuite" in (tmp_path / "report.xml").read_text()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        shown = http.get("/api/prompts/support-answer").json()
        v1 = http.get("/api/prompts/support-answer/versions/1").json()
        latest = http.get("/api/prompts/support-answer/versions/latest").json()
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    labels = {lbl["name"]: (lbl["version"], lbl["protected"]) for lbl in shown["labels"]}
    assert labels == {"latest": (2, False), "production": (2, False), "staging": (2, False)}
    assert v1["source_text"].endswith("# Owner: the support team\n")  # the comment-only edit was kept
    assert latest["source_text"] == (folder / "support-answer.yaml").read_text()

    # The README's cost estimate, on the prompt the walkthrough made (its variables given as the README does).
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [line] = [
        ln
        for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
        for ln in block.splitlines()
        if ln.startswith("pilothouse cost estimate")
    ]
    estimate = run(Step(line, shlex.split(line, comments=True)[1:]))
    assert "smollm2-135m" in estimate and "gpt-4o-mini" in estimate
