"""Scenario tests and gated promotion against the real server and the local model (smollm2-135m, temperature 0,
a few tokens): `prompt test` passes a good version and fails a truncated one (with JUnit XML), `prompt promote`
refuses the failing candidate and leaves the label, `--force` moves it and leaves `prompt.promote.forced` in
the audit log, and a fixed version is promoted through the gate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from pilothouse.cli import common
from pilothouse.cli.main import app
from tests.e2e import assert_clean_log
from tests.support.servers import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

runner = CliRunner()

PROMPT = """name: {name}
model: smollm2-135m
temperature: 0
max_tokens: {max_tokens}
variables:
  country: {{type: string}}
messages:
  - role: system
    content: {system}
  - role: user
    content: "What is the capital of {{{{ country }}}}?"
"""

# Two words at least: a one-token answer (max_tokens: 1) cannot satisfy it, a sentence always does.
TESTS = """
- name: france
  variables: {country: France}
  assert:
    - regex: "\\\\w+\\\\W+\\\\w+"
    - max_tokens: 24
    - max_latency_ms: 60000
    - max_cost_usd: 0
- name: japan
  variables: {country: Japan}
  assert:
    - regex: "\\\\w+\\\\W+\\\\w+"
    - not_contains: "<|im_end|>"
"""

SYSTEM = "You answer geography questions in one short sentence."


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tables are not folded, and no ambient server settings leak in."""
    monkeypatch.setattr(common.console, "width", 250)
    for name in ("PILOTHOUSE_URL", "PILOTHOUSE_API_KEY", "PILOTHOUSE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def cli(server: RunningServer, *args: str, key: str | None = None) -> Result:
    return runner.invoke(app, [*args, "--url", server.url, "--api-key", key or server.admin_key])


def exits(result: Result, code: int) -> Result:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.output
    return result


def write_prompt(folder: Path, name: str, *, max_tokens: int, system: str = SYSTEM, tests: bool = True) -> None:
    folder.mkdir(exist_ok=True)
    text = PROMPT.format(name=name, max_tokens=max_tokens, system=system)
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    if tests:
        (folder / f"{name}.tests.yaml").write_text(TESTS, encoding="utf-8")


def push(server: RunningServer, folder: Path) -> None:
    exits(cli(server, "prompt", "push", str(folder)), 0)


def api(server: RunningServer, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key or server.admin_key}"}
    return httpx.request(method, server.url + path, headers=headers, timeout=60.0, **kwargs)


def label_version(server: RunningServer, name: str, label: str) -> int:
    response = api(server, "GET", f"/api/prompts/{name}/versions/{label}")
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def audit_events(server: RunningServer, action: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api(server, "GET", "/api/audit", params={"after": after, "limit": 1000}).json()["data"]
        if not page:
            return found
        found += [e for e in page if e["action"] == action]
        after = page[-1]["seq"]


def junit_counts(path: Path) -> tuple[int, int, int]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return int(suite.attrib["tests"]), int(suite.attrib["failures"]), int(suite.attrib["errors"])


def test_scenario_tests_gate_the_promotion(server: RunningServer, tmp_path: Path) -> None:
    name = "promo-capital"
    log_offset = len(server.log())
    folder = tmp_path / "prompts"
    write_prompt(folder, name, max_tokens=24)
    push(server, folder)  # v1, and production → v1 (its first version)
    stored = api(server, "GET", f"/api/prompts/{name}/tests").json()
    assert [c["name"] for c in stored["cases"]] == ["france", "japan"]

    passed = exits(cli(server, "prompt", "test", f"{name}@1", "--junit", "v1.xml"), 0)
    assert "2/2 cases passed" in passed.stdout and "france" in passed.stdout
    assert junit_counts(tmp_path / "v1.xml") == (2, 0, 0)
    as_json = json.loads(exits(cli(server, "prompt", "test", f"{name}@1", "--json"), 0).stdout)
    assert as_json["version"] == 1 and as_json["passed"] == 2
    trace = api(server, "GET", f"/api/traces/{as_json['cases'][0]['trace_id']}").json()
    assert (trace["prompt_name"], trace["prompt_version"]) == (name, 1)

    write_prompt(folder, name, max_tokens=1)  # the candidate: answers cut to one token
    push(server, folder)
    failed = exits(cli(server, "prompt", "test", f"{name}@2", "--junit", "v2.xml"), 1)
    assert "0/2 cases passed" in failed.stdout and "no match" in failed.stdout
    assert junit_counts(tmp_path / "v2.xml") == (2, 2, 0)

    refused = exits(cli(server, "prompt", "promote", name, "2", "--to", "production"), 1)
    assert "candidate v2" in refused.stdout and "current v1" in refused.stdout
    assert "refused" in refused.stderr and "candidate v2 fails 2 of 2 case(s)" in refused.stderr
    assert label_version(server, name, "production") == 1

    forced = cli(server, "prompt", "promote", name, "2", "--force", "--reason", "e2e override", "--json")
    result = json.loads(exits(forced, 0).stdout)
    assert result["moved"] and result["forced"] and result["previous_version"] == 1
    assert label_version(server, name, "production") == 2
    (event,) = [e for e in audit_events(server, "prompt.promote.forced") if e["details"]["prompt"] == name]
    assert event["details"]["reason"] == "e2e override" and event["details"]["version"] == 2
    assert event["details"]["comparison"]["candidate"]["passed"] == 0
    assert event["details"]["comparison"]["current"]["passed"] == 2
    test_trace_id = result["comparison"]["cases"][0]["candidate"]["trace_id"]
    test_trace = api(server, "GET", f"/api/traces/{test_trace_id}").json()
    assert (test_trace["name"], test_trace["tags"], test_trace["prompt_version"]) == ("prompt.test", ["prompt-test"], 2)

    write_prompt(folder, name, max_tokens=24, system="You answer geography questions in one short, clear sentence.")
    push(server, folder)  # v3: fixed
    promoted = exits(cli(server, "prompt", "promote", name, "3", "--reason", "fix truncation"), 0)
    assert "'production' moved: version 2 → 3" in promoted.stdout
    assert label_version(server, name, "production") == 3
    moves = [e for e in audit_events(server, "prompt.promote") if e["details"]["prompt"] == name]
    assert moves[-1]["details"]["reason"] == (
        "fix truncation; scenario tests: candidate v3 passed 2/2; current v2 passed 0/2"
    )
    assert_clean_log(server, log_offset)


def test_an_invalid_tests_file_is_reported_by_case_and_field(server: RunningServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tests.yaml"
    bad.write_text("- name: a\n  assert:\n    - regex: '('\n- name: a\n  asserts: []\n", encoding="utf-8")
    result = exits(cli(server, "prompt", "test", "promo-capital@1", "--file", str(bad)), 2)
    assert "cases[0].assert[0].regex: invalid regular expression" in result.stderr
    assert "cases[1]: unknown key(s) asserts" in result.stderr
    assert "cases[1].name: 'a' is also the name of cases[0]" in result.stderr


def test_protected_labels_need_an_admin_to_promote(server: RunningServer, tmp_path: Path) -> None:
    name = "promo-guarded"
    folder = tmp_path / "prompts"
    write_prompt(folder, name, max_tokens=8, tests=False)
    push(server, folder)
    write_prompt(folder, name, max_tokens=9, tests=False)
    push(server, folder)
    missing = api(server, "GET", f"/api/prompts/{name}/tests")
    assert missing.status_code == 404 and f"add {name}.tests.yaml" in missing.json()["error"]["message"]
    developer = api(server, "POST", "/api/keys", json={"name": "promo-dev", "role": "developer"}).json()["secret"]
    assert api(server, "POST", f"/api/prompts/{name}/labels/production/protect").status_code == 200
    denied = exits(cli(server, "prompt", "promote", name, "2", key=developer), 1)
    assert "protected" in denied.stderr and "admin" in denied.stderr
    assert label_version(server, name, "production") == 1
    viewer = api(server, "POST", "/api/keys", json={"name": "promo-viewer", "role": "viewer"}).json()["secret"]
    assert "developer" in exits(cli(server, "prompt", "promote", name, "2", "--to", "staging", key=viewer), 1).stderr
    ungated = exits(cli(server, "prompt", "promote", name, "2"), 0)
    assert "without a gate" in ungated.stdout
    assert label_version(server, name, "production") == 2
