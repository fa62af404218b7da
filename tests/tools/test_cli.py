"""`pilothouse tools` against the server in process: register a file, allow with rules, list, show, check,
revoke and remove; each change is an audit event, and mistakes end with a one-line message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
MODELS = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]
REGISTRY = """\
tools:
  - name: fetch_url
    description: Fetch a web page
    risk: low
    parameters:
      type: object
      properties: {url: {type: string}}
      required: [url]
  - type: function
    risk: high
    function:
      name: transfer_money
      parameters: {type: object, properties: {amount: {type: number}}}
"""


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def cli(*args: str) -> Result:
    return runner.invoke(app, ["tools", *args])


def test_register_allow_check_revoke_and_remove(http: TestClient, tmp_path: Path) -> None:
    registry = tmp_path / "tools.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    result = cli("register", str(registry), "--json")
    assert result.exit_code == 0, result.output
    assert [(t["name"], t["change"]) for t in json.loads(result.stdout)["data"]] == [
        ("fetch_url", "created"),
        ("transfer_money", "created"),
    ]
    assert "unchanged" in cli("register", str(registry)).stdout

    result = cli("allow", "fetch_url", "--project", "--rule", "url:domains=example.com,*.example.org")
    assert result.exit_code == 0 and "fetch_url allowed to the project (created" in result.stdout, result.output
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {arg: amount, max: 100}\n", encoding="utf-8")
    assert cli("allow", "transfer_money", "--agent", "payer", "--rules-file", str(rules)).exit_code == 0

    listed = cli("list").stdout
    assert "fetch_url" in listed and "agent:payer" in listed and "project" in listed
    shown = json.loads(cli("show", "transfer_money", "--json").stdout)
    assert shown["grants"][0]["rules"] == [{"arg": "amount", "max": 100}]
    assert "amount:max=100" in cli("show", "transfer_money").stdout

    ok = cli("check", "fetch_url", "--args", '{"url": "https://docs.example.org/x"}')
    assert ok.exit_code == 0 and ok.stdout.startswith("allowed"), ok.output
    refused = cli("check", "fetch_url", "--args", '{"url": "https://evil.test/"}')
    assert refused.exit_code == 1 and "tool_arguments_invalid" not in refused.stdout
    assert "outside the allowed domains" in refused.stdout
    pending = cli("check", "transfer_money", "--agent", "payer", "--args", '{"amount": 5}', "--json")
    assert pending.exit_code == 1 and json.loads(pending.stdout)["code"] == "tool_requires_approval"

    grant_id = shown["grants"][0]["id"]
    assert cli("revoke", "transfer_money", grant_id).exit_code == 0
    assert cli("check", "transfer_money", "--agent", "payer").exit_code == 1
    assert cli("remove", "fetch_url").exit_code == 0
    gone = cli("show", "fetch_url")
    assert gone.exit_code == 1 and "no tool 'fetch_url'" in gone.output

    actions = [e["action"] for e in http.get("/api/audit", params={"limit": 100}).json()["data"]]
    for action in ("tool.register", "tool.grant", "tool.revoke", "tool.delete"):
        assert action in actions


def test_mistakes_end_with_a_one_line_message(http: TestClient, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: has space\n", encoding="utf-8")
    result = cli("register", str(bad))
    assert result.exit_code == 2 and "'name' must be" in result.output
    assert cli("allow", "x", "--project", "--key", "k").exit_code == 2
    result = cli("allow", "x", "--project", "--rule", "amount:most=3")
    assert result.exit_code == 2 and "not a check" in result.output
    result = cli("allow", "missing", "--project")
    assert result.exit_code == 1 and "no tool 'missing'" in result.output
