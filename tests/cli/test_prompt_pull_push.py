"""`pilothouse prompt push` and `pull` on prompt files, against the session server: a comment-only edit comes
back byte for byte, pull never overwrites a local edit without --force (and shows what would change), and the
name filter. Each test works in a project of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.prompts.registry.folder_state import STATE_FILE
from tests.support.servers import RunningServer

runner = CliRunner()

SUPPORT = """\
name: support-answer
model: smollm2-135m
max_tokens: 64
variables:
  question: {type: string}
messages:
  - role: user
    content: "{{ question }}"
"""
COMMENTED = "# Owner: the support team\n" + SUPPORT.replace("max_tokens: 64", "max_tokens: 64   # short answers")
DRAFT = SUPPORT.replace("max_tokens: 64", "max_tokens: 32")
GREETING = "name: greeting\nmessages:\n  - role: user\n    content: Say hello.\n"
TESTS = '- name: parcel\n  variables: {question: "Where is my parcel?"}\n'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common.console, "width", 250)
    for name in ("PILOTHOUSE_URL", "PILOTHOUSE_API_KEY", "PILOTHOUSE_DATA_DIR", "PILOTHOUSE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def key(server: RunningServer) -> Iterator[str]:
    """A developer key of a new project."""
    name = f"files-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30) as http:
        assert http.post("/api/projects", json={"name": name}).status_code == 201
        resp = http.post("/api/keys", json={"name": "dev", "role": "developer", "project": name})
        assert resp.status_code == 201, resp.text
        yield resp.json()["secret"]


def cli(server: RunningServer, key: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--url", server.url, "--api-key", key])


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result.stdout


def api(server: RunningServer, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        return http.request(method, path, **kwargs)


def folder_with(path: Path, **files: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_a_comment_only_edit_is_kept_and_pulled_back_byte_for_byte(
    server: RunningServer, key: str, tmp_path: Path
) -> None:
    prompts = folder_with(tmp_path / "prompts", **{"support-answer.yaml": SUPPORT})
    assert "new version 1" in ok(cli(server, key, "prompt", "push", str(prompts)))
    (prompts / "support-answer.yaml").write_text(COMMENTED)
    out = ok(cli(server, key, "prompt", "push", str(prompts)))
    assert "source updated, no new version (v1)" in out
    assert "0 new version(s), 1 source text(s) updated" in out
    [result] = json.loads(ok(cli(server, key, "prompt", "push", str(prompts), "--json")))
    assert (result["status"], result["version"]) == ("unchanged", 1)

    pulled = tmp_path / "pulled"
    ok(cli(server, key, "prompt", "pull", str(pulled)))
    assert (pulled / "support-answer.yaml").read_bytes() == COMMENTED.encode()
    versions = api(server, key, "GET", "/api/prompts/support-answer").json()["versions"]
    assert [v["version"] for v in versions] == [1]
    stored = api(server, key, "GET", "/api/prompts/support-answer/versions/1").json()
    assert stored["source_text"] == COMMENTED
    # A real edit is a new version, reported as one.
    (prompts / "support-answer.yaml").write_text(DRAFT)
    assert "new version 2" in ok(cli(server, key, "prompt", "push", str(prompts)))


def test_pull_refuses_to_overwrite_local_edits_without_force(server: RunningServer, key: str, tmp_path: Path) -> None:
    prompts = folder_with(tmp_path / "prompts", **{"support-answer.yaml": SUPPORT, "support-answer.tests.yaml": TESTS})
    ok(cli(server, key, "prompt", "push", str(prompts)))
    state = json.loads((prompts / STATE_FILE).read_text())
    assert state["files"]["support-answer.yaml"]["version"] == 1
    assert state["files"]["support-answer.tests.yaml"]["via"] == "push"
    assert "unchanged" in ok(cli(server, key, "prompt", "pull", str(prompts)))

    (prompts / "support-answer.yaml").write_text(DRAFT)  # a local draft, not pushed
    refused = cli(server, key, "prompt", "pull", str(prompts))
    assert refused.exit_code == 1, refused.output
    assert "support-answer.yaml" in refused.stderr and "--force" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert "-max_tokens: 32" in refused.stdout and "+max_tokens: 64" in refused.stdout
    assert (prompts / "support-answer.yaml").read_text() == DRAFT
    as_json = cli(server, key, "prompt", "pull", str(prompts), "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["written"] is False and [c["file"] for c in report["conflicts"]] == ["support-answer.yaml"]

    out = ok(cli(server, key, "prompt", "pull", str(prompts), "--force"))
    assert "overwritten local edits (+1 -1 lines)" in out
    assert (prompts / "support-answer.yaml").read_text() == SUPPORT

    # Pushed, the draft is on the server: pulling production's v1 over it is allowed, and says what changed.
    (prompts / "support-answer.yaml").write_text(DRAFT)
    assert "new version 2" in ok(cli(server, key, "prompt", "push", str(prompts)))
    out = ok(cli(server, key, "prompt", "pull", str(prompts)))
    assert "updated (+1 -1 lines)" in out
    assert (prompts / "support-answer.yaml").read_text() == SUPPORT

    # A folder with no record of a differing file (a fresh clone) is protected too.
    clone = folder_with(tmp_path / "clone", **{"support-answer.yaml": DRAFT})
    assert cli(server, key, "prompt", "pull", str(clone)).exit_code == 1
    assert (clone / "support-answer.yaml").read_text() == DRAFT
    assert not (clone / "support-answer.tests.yaml").exists()  # nothing was written


def test_pull_filters_by_name_and_reference(server: RunningServer, key: str, tmp_path: Path) -> None:
    prompts = folder_with(
        tmp_path / "prompts",
        **{"support-answer.yaml": SUPPORT, "support-answer.tests.yaml": TESTS, "greeting.yaml": GREETING},
    )
    ok(cli(server, key, "prompt", "push", str(prompts)))
    (prompts / "support-answer.yaml").write_text(DRAFT)
    ok(cli(server, key, "prompt", "push", str(prompts)))

    only = tmp_path / "only"
    ok(cli(server, key, "prompt", "pull", str(only), "support-answer"))
    assert sorted(p.name for p in only.iterdir()) == [STATE_FILE, "support-answer.tests.yaml", "support-answer.yaml"]
    assert (only / "support-answer.yaml").read_text() == SUPPORT  # production: v1

    pinned = tmp_path / "pinned"
    ok(cli(server, key, "prompt", "pull", str(pinned), "support-answer@2", "greeting"))
    assert (pinned / "support-answer.yaml").read_text() == DRAFT and (pinned / "greeting.yaml").is_file()
    latest = tmp_path / "latest"
    ok(cli(server, key, "prompt", "pull", str(latest), "support-answer", "--all-latest"))
    assert (latest / "support-answer.yaml").read_text() == DRAFT

    missing = cli(server, key, "prompt", "pull", str(tmp_path / "x"), "nope")
    assert missing.exit_code == 1 and "no prompt named 'nope'" in missing.stderr
    assert not (tmp_path / "x").exists()

    resp = api(server, key, "POST", "/api/prompts/pull", json={"names": ["greeting", "nope", "other"]})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "prompt_not_found"
    assert "'nope', 'other'" in resp.json()["error"]["message"]
    for bad in ("support-answer@", "Support", "a@b@c", "a@0"):  # not NAME or NAME@REF: the schema refuses it
        resp = api(server, key, "POST", "/api/prompts/pull", json={"names": [bad]})
        assert resp.status_code == 422 and "names" in str(resp.json()["error"]["param"]), (bad, resp.text)
    resp = api(server, key, "POST", "/api/prompts/pull", json={"names": ["support-answer@9"]})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "prompt_version_not_found"
    body = api(server, key, "POST", "/api/prompts/pull", json={"names": ["support-answer@sha:" + "0" * 6]})
    assert body.status_code == 404
    files = api(server, key, "POST", "/api/prompts/pull", json={"names": ["greeting"]}).json()["files"]
    assert [(f["path"], f["version"]) for f in files] == [("greeting.yaml", 1)]
