"""Prompts end to end: `pilothouse prompt push/pull` as a user runs them, the gateway called with
`model: "prompt:NAME@LABEL"` through the official `openai` client on the local model, label rollouts and
rollbacks, role checks, and the management API. Each module run works in a project of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from pilothouse.prompts.registry.folder_state import STATE_FILE
from tests.e2e import assert_clean_log, only_span
from tests.support.servers import REPO, RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

TRACE_HEADER = "x-pilothouse-trace-id"
SUPPORT = """\
# prompts/support-answer.yaml
name: support-answer
model: smollm2-135m
temperature: 0
max_tokens: 64
variables:
  question: {type: string}
messages:
  - role: system
    content: You answer customer questions in one short sentence.
  - role: user
    content: "{{ question }}"
"""
SUPPORT_V2 = SUPPORT.replace("max_tokens: 64", "max_tokens: 8").replace(
    "in one short sentence.", "in one short, friendly sentence."
)
GREETING = """\
---
name: greeting
description: Greets a customer.
model: smollm2-135m
max_tokens: 8
variables:
  customer: {type: string}
  tone: {type: string, enum: [warm, formal], default: warm}
---

## system
Greet people in a {{ tone }} tone.

## user
Say hello to {{ customer }}.
"""
TESTS = """\
# scenario tests of support-answer (run by `pilothouse prompt test`)
- name: parcel
  variables: {question: "Where is my parcel?"}
"""


@dataclass
class Project:
    """A project of its own on the session server, with keys of each role."""

    server: RunningServer
    keys: dict[str, str]

    def http(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {self.keys[role]}"}, timeout=60.0
        )

    def cli(self, *args: str, role: str = "admin") -> subprocess.CompletedProcess[str]:
        """`python -m pilothouse ARGS --url ... --api-key ...` in a real process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
        env["COLUMNS"] = "200"
        cmd = [sys.executable, "-m", "pilothouse", *args, "--url", self.server.url, "--api-key", self.keys[role]]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)

    def ok(self, *args: str, role: str = "admin") -> str:
        result = self.cli(*args, role=role)
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout


def new_project(server: RunningServer) -> Project:
    """A fresh project on the server with a key of each role."""
    name = f"prompts-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30) as http:
        assert http.post("/api/projects", json={"name": name}).status_code == 201
        keys = {}
        for role in ("admin", "developer", "viewer", "service"):
            resp = http.post("/api/keys", json={"name": f"{role}-key", "role": role, "project": name})
            assert resp.status_code == 201, resp.text
            keys[role] = resp.json()["secret"]
    return Project(server, keys)


@pytest.fixture(scope="module")
def project(server: RunningServer) -> Iterator[Project]:
    offset = len(server.log())
    yield new_project(server)
    assert_clean_log(server, offset)


@pytest.fixture(scope="module")
def pushed(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder pushed, edited (support-answer.yaml only) and pushed again: v1 and v2 of support-answer."""
    folder = tmp_path_factory.mktemp("prompts")
    (folder / "support-answer.yaml").write_text(SUPPORT)
    (folder / "greeting.md").write_text(GREETING)
    (folder / "support-answer.tests.yaml").write_text(TESTS)
    (folder / "README.md").write_text("# Our prompts\n")  # not a prompt: no front matter
    out = project.ok("prompt", "push", str(folder), "--message", "first")
    assert "2 new version(s), 3 file(s)" in out
    return folder


def call(client: OpenAI, model: str, variables: dict[str, Any], **extra: Any) -> tuple[str, str]:
    """(trace id, answer) of one gateway call with a prompt reference."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[], extra_body={"variables": variables}, **extra
    )
    completion = raw.parse()
    return raw.headers[TRACE_HEADER], completion.choices[0].message.content or ""


def trace_of(project: Project, trace_id: str) -> dict[str, Any]:
    with project.http() as http:
        resp = http.get(f"/api/traces/{trace_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def versions(project: Project, name: str) -> list[int]:
    with project.http("viewer") as http:
        resp = http.get(f"/api/prompts/{name}")
    assert resp.status_code == 200, resp.text
    return [v["version"] for v in resp.json()["versions"]]


def test_push_edit_push_pull_is_idempotent_and_lossless(project: Project, pushed: Path, tmp_path: Path) -> None:
    again = project.ok("prompt", "push", str(pushed), "--json")
    assert '"status": "created"' not in again  # nothing changed: no versions
    (pushed / "support-answer.yaml").write_text(SUPPORT_V2)
    out = project.ok("prompt", "push", str(pushed), "-m", "shorter and friendlier")
    assert "1 new version(s)" in out and "new version 2" in out
    assert versions(project, "support-answer") == [1, 2]
    assert versions(project, "greeting") == [1]

    pulled = tmp_path / "pulled"
    project.ok("prompt", "pull", str(pulled), "--all-latest")
    expected = {p.name: p.read_bytes() for p in pushed.iterdir() if p.name not in ("README.md", STATE_FILE)}
    assert {p.name: p.read_bytes() for p in pulled.iterdir() if p.name != STATE_FILE} == expected

    # Production still points at version 1: pulling it gives the file as it was first pushed.
    production = tmp_path / "production"
    project.ok("prompt", "pull", str(production))
    assert (production / "support-answer.yaml").read_text() == SUPPORT
    assert "unchanged" in project.ok("prompt", "pull", str(production))


def test_gateway_call_uses_the_label_and_follows_its_moves(project: Project, pushed: Path, openai_for: Any) -> None:
    assert versions(project, "support-answer") == [1, 2]
    client = openai_for(project.server, project.keys["service"])
    model = "prompt:support-answer@production"
    question = {"question": "Where is my parcel?"}

    def check(trace_id: str, version: int, system: str, max_tokens: int) -> None:
        trace = trace_of(project, trace_id)
        assert trace["status"] == "ok", trace
        assert (trace["prompt_name"], trace["prompt_version"]) == ("support-answer", version)
        assert trace["model"] == "smollm2-135m"
        span = only_span(trace, "llm")
        assert span["attributes"]["gen_ai.prompt.name"] == "support-answer"
        assert span["attributes"]["pilothouse.prompt.version"] == version
        assert span["attributes"]["pilothouse.prompt.label"] == "production"
        assert span["attributes"]["gen_ai.request.max_tokens"] == max_tokens
        assert span["input"]["messages"][0] == {"role": "system", "content": system}
        assert span["input"]["messages"][1] == {"role": "user", "content": question["question"]}
        assert span["input"]["variables"] == question
        assert 0 < span["output_tokens"] <= max_tokens

    v1_system = "You answer customer questions in one short sentence."
    v2_system = "You answer customer questions in one short, friendly sentence."
    trace_id, answer = call(client, model, question, max_tokens=6)  # the caller's max_tokens wins
    assert answer
    check(trace_id, 1, v1_system, 6)

    assert "version 2" in project.ok("prompt", "label", "support-answer", "2", "production", role="developer")
    check(call(client, model, question)[0], 2, v2_system, 8)

    project.ok("prompt", "label", "support-answer", "1", "production", "--reason", "rollback", role="developer")
    check(call(client, model, question, max_tokens=4)[0], 1, v1_system, 4)

    with project.http() as http:
        events = http.get("/api/audit", params={"limit": 500}).json()["data"]
    moves = [e for e in events if e["action"] == "prompt.label.move" and e["details"]["prompt"] == "support-answer"]
    assert [(m["details"]["from"], m["details"]["to"], m["details"]["reason"]) for m in moves[-2:]] == [
        ([{"version": 1, "weight": 100}], [{"version": 2, "weight": 100}], None),
        ([{"version": 2, "weight": 100}], [{"version": 1, "weight": 100}], "rollback"),
    ]

    # A version reference and caller messages appended after the rendered ones.
    trace_id, _ = call(
        client,
        "prompt:greeting@1",
        {"customer": "Ann"},
        max_tokens=4,
    )
    span = only_span(trace_of(project, trace_id), "llm")
    assert span["input"]["messages"] == [
        {"role": "system", "content": "Greet people in a warm tone."},
        {"role": "user", "content": "Say hello to Ann."},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="prompt:greeting",
        messages=[{"role": "user", "content": "Then ask how you can help."}],
        extra_body={"variables": {"customer": "Bo", "tone": "formal"}},
        max_tokens=4,
    )
    span = only_span(trace_of(project, raw.headers[TRACE_HEADER]), "llm")
    assert [m["content"] for m in span["input"]["messages"]] == [
        "Greet people in a formal tone.",
        "Say hello to Bo.",
        "Then ask how you can help.",
    ]


def test_variable_errors_are_422_naming_the_variable(project: Project, pushed: Path, openai_for: Any) -> None:
    client = openai_for(project.server, project.keys["service"])
    model = "prompt:support-answer@production"
    cases = [
        ({}, "question", "missing required variable 'question'"),
        ({"question": 42}, "question", "variable 'question' must be a string, got integer"),
        ({"question": "q", "lang": "fr"}, "lang", "unknown variable 'lang'"),
    ]
    for variables, param, message in cases:
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            call(client, model, variables)
        error = caught.value.response.json()["error"]
        assert caught.value.status_code == 422
        assert error["param"] == param and message in error["message"], error
        trace = trace_of(project, caught.value.response.headers[TRACE_HEADER])
        assert trace["status"] == "error" and trace["prompt_name"] == "support-answer"
    with pytest.raises(openai.NotFoundError) as missing:
        call(client, "prompt:no-such-prompt", {})
    assert "no prompt named 'no-such-prompt'" in missing.value.response.json()["error"]["message"]
    with pytest.raises(openai.NotFoundError):
        call(client, "prompt:support-answer@canary", {"question": "q"})


def test_roles_and_protected_labels(project: Project, pushed: Path) -> None:
    with project.http("viewer") as viewer:
        assert viewer.get("/api/prompts").status_code == 200
        resp = viewer.post("/api/prompts/push", json={"files": [{"path": "x.yaml", "content": SUPPORT}]})
        assert resp.status_code == 403
        assert viewer.put("/api/prompts/greeting/labels/staging", json={"version": 1}).status_code == 403
    assert project.cli("prompt", "protect", "support-answer", "production", role="developer").returncode == 1
    project.ok("prompt", "protect", "support-answer", "production")
    refused = project.cli("prompt", "label", "support-answer", "2", "production", role="developer")
    assert refused.returncode == 1
    assert "403" in refused.stderr and "protected" in refused.stderr and "admin" in refused.stderr
    project.ok("prompt", "label", "support-answer", "2", "staging", role="developer")  # unprotected: fine
    project.ok("prompt", "label", "support-answer", "1", "production")  # an admin may
    listing = project.ok("prompt", "list")
    assert "production🔒→1" in listing and "staging→2" in listing
    project.ok("prompt", "protect", "support-answer", "production", "--off")
    project.ok("prompt", "label", "support-answer", "1", "production", role="developer")
    with project.http("developer") as dev:
        resp = dev.put("/api/prompts/support-answer/labels/latest", json={"version": 1})
        assert resp.status_code == 400 and "pushes move it" in resp.json()["error"]["message"]
        resp = dev.put("/api/prompts/support-answer/labels/production", json={"version": 99})
        assert resp.status_code == 404
        resp = dev.put("/api/prompts/support-answer/labels/production", json={"version": 1, "splits": []})
        assert resp.status_code == 422


def test_management_api_and_cli_views(project: Project, pushed: Path, tmp_path: Path) -> None:
    with project.http("viewer") as http:
        version = http.get("/api/prompts/support-answer/versions/2").json()
        assert version["source_text"] == SUPPORT_V2 and version["source_format"] == "yaml"
        assert version["message"] == "shorter and friendlier" and version["author"] == "admin-key"
        sha = version["content_hash"]
        by_sha = http.get(f"/api/prompts/support-answer/versions/sha:{sha[:7]}").json()
        assert by_sha["version"] == 2
        assert http.get("/api/prompts/support-answer/versions/sha:zz").status_code == 400
        assert http.get("/api/prompts/support-answer/versions/7").status_code == 404
        diff = http.get("/api/prompts/support-answer/diff", params={"from": "1", "to": "2"}).json()
        assert diff["config"] == [{"key": "max_tokens", "from": 64, "to": 8}]
        assert "+You answer customer questions in one short, friendly sentence." in diff["messages"][0]["diff"]
        rendered = http.post("/api/prompts/greeting/render", json={"ref": "1", "variables": {"customer": "Ann"}})
        assert rendered.json()["messages"][1]["content"] == "Say hello to Ann."
        bad = http.get("/api/prompts/greeting/resolve", params={"variables": '{"customer": 1}'})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "customer"
        assert http.get("/api/prompts/greeting/resolve", params={"variables": "{"}).status_code == 400
    with project.http("developer") as dev:
        bad_file = {
            "path": "broken.yaml",
            "content": "name: broken\nmessages:\n  - role: user\n    content: '{{ x }'\n",
        }
        resp = dev.post("/api/prompts/push", json={"files": [bad_file]})
        assert resp.status_code == 400 and "broken.yaml line 4" in resp.json()["error"]["message"]
        created = dev.post(
            "/api/prompts/from-api/versions",
            json={"definition": {"messages": [{"role": "user", "content": "hi"}], "model": "smollm2-135m"}},
        )
        assert created.status_code == 200 and created.json()["status"] == "created"
    assert "Say hello to Zoe." in project.ok("prompt", "render", "greeting@1", "--var", "customer=Zoe")
    diff_out = project.ok("prompt", "diff", "support-answer", "1", "2")
    assert "-You answer customer questions in one short sentence." in diff_out and "max_tokens" in diff_out
    assert "support-answer@2" in project.ok("prompt", "show", "support-answer@sha:" + sha[:8])
    shown = project.ok("prompt", "show", "support-answer", "--json")
    assert '"version": 2' in shown
    pulled = tmp_path / "pulled"
    project.ok("prompt", "pull", str(pulled), "--all-latest")
    assert (pulled / "from-api.yaml").read_text() == (
        "name: from-api\nmodel: smollm2-135m\nmessages:\n- role: user\n  content: hi\n"
    )


def test_the_docs_examples_run(server: RunningServer, tmp_path: Path) -> None:
    """docs/prompts.md: the quick start's prompt file pushed with the CLI, then its two Python examples run
    as written (only the port differs), with the key where `pilothouse up` saves it."""
    docs = (REPO / "docs" / "prompts.md").read_text(encoding="utf-8")
    prompt_file = re.search(r"<<'EOF'\n(.*?)\nEOF\n", docs, flags=re.S)
    assert prompt_file is not None and prompt_file.group(1) + "\n" == SUPPORT
    docs_project = new_project(server)
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "support-answer.yaml").write_text(prompt_file.group(1) + "\n")
    docs_project.ok("prompt", "push", str(folder), "-m", "first version")
    (tmp_path / ".pilothouse").mkdir()
    (tmp_path / ".pilothouse" / "admin_key").write_text(docs_project.keys["admin"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    env["PILOTHOUSE_URL"] = server.url
    env["PILOTHOUSE_PROMPT_CACHE"] = str(tmp_path / "cache")
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    outputs = []
    for code in blocks[:2]:
        code = code.replace("http://127.0.0.1:7300/v1", server.base_url)
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{code}\n{result.stderr}"
        outputs.append(result.stdout)
    assert outputs[0].strip()
    assert outputs[1].startswith("support-answer 1 smollm2-135m\n")
    assert "'content': 'Where is my parcel?'" in outputs[1]
