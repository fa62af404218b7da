"""`pilothouse dataset` as a user runs it against `pilothouse up` with the local model: items made from real
gateway traces (calls through a registered prompt with the official `openai` client), files pushed and pulled
as JSONL and CSV with nothing lost, splits, clear errors for bad files, roles, and project isolation. The module
works in projects of its own on the session server."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from pilothouse.sdk.client import Pilothouse, PilothouseError
from tests.e2e import assert_clean_log
from tests.support.cli_process import cli_fails, cli_json, cli_ok, run_cli
from tests.support.servers import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

PROMPT = """\
name: ds-greeting
model: smollm2-135m
temperature: 0
max_tokens: 10
variables:
  customer: {type: string}
messages:
  - role: system
    content: You greet customers in one short sentence.
  - role: user
    content: "Say hello to {{ customer }}."
"""
CUSTOMERS = ["Ada", "Bo", "Cy"]
ITEMS = [
    {"id": "refund", "input": {"question": "Can I get a refund?"}, "expected": "Yes, within 30 days.", "split": "test"},
    {"input": "What is the capital of France?", "expected": "Paris", "context": ["Paris is the capital of France."]},
    {"input": {"question": "Opening hours?"}, "expected": "9 to 5", "metadata": {"source": "faq", "rank": 3}},
]


@dataclass
class Project:
    server: RunningServer
    name: str
    keys: dict[str, str]
    answers: dict[str, str]
    """customer -> the answer the gateway gave through the prompt."""

    def cli(self, *args: str, role: str = "developer") -> subprocess.CompletedProcess[str]:
        return run_cli(self.server, self.keys[role], *args)

    def ok(self, *args: str, role: str = "developer") -> str:
        return cli_ok(self.server, self.keys[role], *args)

    def json(self, *args: str, role: str = "developer") -> Any:
        return cli_json(self.server, self.keys[role], *args)

    def fails(self, *args: str, role: str = "developer") -> str:
        return cli_fails(self.server, self.keys[role], *args)


def _project(http: httpx.Client, name: str) -> dict[str, str]:
    assert http.post("/api/projects", json={"name": name}).status_code == 201
    keys = {}
    for role in ("admin", "developer", "viewer"):
        resp = http.post("/api/keys", json={"name": f"{role}-key", "role": role, "project": name})
        assert resp.status_code == 201, resp.text
        keys[role] = resp.json()["secret"]
    return keys


@pytest.fixture(scope="module")
def project(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A fresh project with a prompt and three calls through it; a second project's keys under `other-*`."""
    offset = len(server.log())
    name = f"datasets-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30) as http:
        keys = _project(http, name)
        keys.update({f"other-{k}": v for k, v in _project(http, f"{name}-other").items()})
    found = Project(server, name, keys, {})
    folder = tmp_path_factory.mktemp("ds-prompts")
    (folder / "ds-greeting.yaml").write_text(PROMPT)
    found.ok("prompt", "push", str(folder))
    client = OpenAI(base_url=server.base_url, api_key=keys["developer"], max_retries=0, timeout=60.0)
    try:
        for customer in CUSTOMERS:
            reply = client.chat.completions.create(
                model="prompt:ds-greeting", messages=[], extra_body={"variables": {"customer": customer}}
            )
            found.answers[customer] = reply.choices[0].message.content or ""
    finally:
        client.close()
    yield found
    assert_clean_log(server, offset)


def _wait_for_traces(project: Project, n: int) -> None:
    with Pilothouse(project.server.url, project.keys["viewer"]) as ph:
        deadline = time.monotonic() + 20
        while len(ph.list_traces(prompt="ds-greeting")["data"]) < n:
            assert time.monotonic() < deadline, "the traces were not stored in time"
            time.sleep(0.2)


def test_items_from_traces_carry_the_variables_and_the_answers(project: Project) -> None:
    _wait_for_traces(project, len(CUSTOMERS))
    result = project.json("dataset", "add-from-traces", "prod-greetings", "--prompt", "ds-greeting", "--split", "test")
    assert (result["added"], result["created"], result["latest"]["version"]) == (3, True, 1)
    assert result["latest"]["splits"] == {"test": 3}
    with Pilothouse(project.server.url, project.keys["viewer"]) as ph:
        items = list(ph.dataset_items("prod-greetings"))
    got = {i["input"]["customer"]: i for i in items}
    assert set(got) == set(CUSTOMERS)
    for customer, item in got.items():
        assert item["expected"] == project.answers[customer]
        assert item["metadata"]["prompt"] == "ds-greeting" and item["metadata"]["expected_from"] == "trace"
        assert item["id"] == f"trace-{item['metadata']['trace_id']}"
    again = project.json("dataset", "add-from-traces", "prod-greetings", "--prompt", "ds-greeting", "--split", "test")
    assert (again["added"], again["created"], again["latest"]["version"]) == (3, False, 1)


def test_traces_without_kept_content_are_skipped_and_counted(project: Project, openai_for: Any) -> None:
    admin = {"Authorization": f"Bearer {project.keys['admin']}"}
    with httpx.Client(base_url=project.server.url, headers=admin) as http:
        assert http.put("/api/projects/capture", json={"mode": "off"}).status_code == 200
        try:
            client = openai_for(project.server, project.keys["developer"])
            client.chat.completions.create(
                model="smollm2-135m", messages=[{"role": "user", "content": "Say yes."}], max_tokens=4
            )
            with Pilothouse(project.server.url, project.keys["viewer"]) as ph:
                deadline = time.monotonic() + 20
                while not ph.list_traces(model="smollm2-135m", source="http")["data"]:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            stderr = project.fails("dataset", "add-from-traces", "dark", "--model", "smollm2-135m", "--limit", "1")
        finally:
            assert http.put("/api/projects/capture", json={"mode": "full"}).status_code == 200
    assert "no trace matching the filter could become an item" in stderr and "content not kept" in stderr


def test_files_round_trip_through_push_and_pull(project: Project, tmp_path: Path) -> None:
    source = tmp_path / "faq.jsonl"
    source.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    pushed = project.json("dataset", "push", str(source), "--name", "faq", "-m", "first cut")
    assert (pushed["created"], pushed["latest"]["version"], pushed["latest"]["item_count"]) == (True, 1, 3)
    assert "unchanged at version 1" in project.ok("dataset", "push", str(source), "--name", "faq")
    pulled = tmp_path / "pulled.jsonl"
    project.ok("dataset", "pull", "faq", "--out", str(pulled), role="viewer")
    rows = [json.loads(line) for line in pulled.read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "id"} for r in rows[1:]] == ITEMS[1:]
    assert rows[0] == ITEMS[0]
    as_csv = tmp_path / "faq.csv"
    project.ok("dataset", "pull", "faq", "--out", str(as_csv), role="viewer")
    copy = project.json("dataset", "push", str(as_csv), "--name", "faq-copy")
    assert copy["latest"]["content_hash"] == pushed["latest"]["content_hash"]


def test_split_makes_a_new_version_and_pull_takes_one_split(project: Project, tmp_path: Path) -> None:
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps({"id": f"q{i}", "input": f"question {i}"}) + "\n" for i in range(200)))
    project.ok("dataset", "push", str(source), "--name", "many")
    split = project.json("dataset", "split", "many", "--fractions", "train=0.7,test=0.3", "--seed", "5")
    assert split["latest"]["version"] == 2
    assert sum(split["latest"]["splits"].values()) == 200 and 40 <= split["latest"]["splits"]["test"] <= 80
    test_only = project.ok("dataset", "pull", "many", "--split", "test", role="viewer").splitlines()
    assert len(test_only) == split["latest"]["splits"]["test"]
    assert all(json.loads(line)["split"] == "test" for line in test_only)
    first = project.ok("dataset", "pull", "many", "--version", "1", role="viewer").splitlines()
    assert len(first) == 200 and all("split" not in json.loads(line) for line in first)
    versions = project.json("dataset", "show", "many", role="viewer")
    assert [v["version"] for v in versions] == [2, 1]


def test_bad_files_and_arguments_get_clear_errors(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "fine"}\n{"input": "x", "expectd": "typo"}\n')
    stderr = project.fails("dataset", "push", str(bad), "--name", "x")
    assert "line 2: expectd: Extra inputs are not permitted" in stderr
    other = tmp_path / "items.txt"
    other.write_text("hello\n")
    assert "use .jsonl or .csv" in project.fails("dataset", "push", str(other), "--name", "x")
    assert "add up to 1.2" in project.fails("dataset", "split", "many", "--fractions", "a=0.6,b=0.6")
    with Pilothouse(project.server.url, project.keys["developer"]) as ph, pytest.raises(PilothouseError) as raised:
        ph.push_dataset("x", [{"input": "a"}, {"id": "bad id!", "input": "b"}])
    assert raised.value.status == 400 and "item 2: id: String should match pattern" in raised.value.message


def test_roles_and_projects_are_kept_apart(project: Project) -> None:
    with Pilothouse(project.server.url, project.keys["viewer"]) as ph:
        with pytest.raises(PilothouseError) as raised:
            ph.push_dataset("viewer-push", ITEMS)
        assert raised.value.status == 403
        assert any(d["name"] == "faq" for d in ph.list_datasets())
    with Pilothouse(project.server.url, project.keys["other-developer"]) as ph:
        assert ph.list_datasets() == []
        for call in (lambda: ph.get_dataset("faq"), lambda: list(ph.dataset_items("faq"))):
            with pytest.raises(PilothouseError) as raised:
                call()
            assert raised.value.status == 404
        same_name = ph.push_dataset("faq", [{"input": "their own"}])
        assert same_name["latest"]["version"] == 1
    with Pilothouse(project.server.url, project.keys["viewer"]) as ph:
        assert ph.get_dataset("faq")["latest"]["item_count"] == 3
