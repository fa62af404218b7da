"""Prompt scenario tests run at promotion go through the gateway's one entry point: a project's hard budget
bounds what they spend. A promotion whose tests would exceed it is refused with the budget's error shown to
the user, the label stays where it was, and the tests' traces say they came from `prompt_test`. The server
runs in this process with a priced fake model; the CLI talks to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli import common
from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
NAME = "support-answer"
# 1,000 USD per 1M tokens: 0.001 USD a token. The fake model echoes the question ("echo: Where is my parcel?",
# 5 tokens) after 9 input tokens, so each scenario call costs about 0.014 USD, more than the whole budget.
PRICE = Decimal(1000)
MODELS = [
    ModelEntry(
        name="m",
        deployments=[
            Deployment(
                provider="fake",
                model="echo",
                input_price_per_mtok=PRICE,
                output_price_per_mtok=PRICE,
                context_window=4096,
            )
        ],
    )
]
TESTS = """\
- name: parcel
  variables: {question: "Where is my parcel?"}
- name: refund
  variables: {question: "Can I get a refund?"}
"""


def prompt_file(system: str) -> str:
    return (
        f"name: {NAME}\nmodel: m\nmax_tokens: 16\nvariables:\n  question: {{type: string}}\n"
        f"messages:\n  - role: system\n    content: {system}\n  - role: user\n    content: '{{{{ question }}}}'\n"
    )


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Versions 1 and 2 of the prompt with their scenario tests ('production' → v1, its first version)."""
    monkeypatch.setattr(common.console, "width", 250)
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        for system in ("Be brief.", "Be very brief."):
            files = [{"path": f"{NAME}.yaml", "content": prompt_file(system)}]
            files.append({"path": f"{NAME}.tests.yaml", "content": TESTS})
            assert client.post("/api/prompts/push", json={"files": files}).status_code == 200
        yield client


def production(client: TestClient) -> int:
    response = client.get(f"/api/prompts/{NAME}/versions/production")
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def test_the_promotion_passes_its_tests_without_a_budget(http: TestClient) -> None:
    result = runner.invoke(app, ["prompt", "promote", NAME, "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["moved"] is True and production(http) == 2


def test_scenario_tests_that_would_exceed_the_hard_budget_are_refused_by_it(http: TestClient) -> None:
    budget = {"scope": "project", "subject": "default", "usd": "0.01", "mode": "hard"}
    assert http.post("/api/budgets", json=budget).status_code == 200

    refused = runner.invoke(app, ["prompt", "promote", NAME, "2"])
    assert refused.exit_code == 1, refused.output
    assert "refused" in refused.stderr and "candidate v2 fails" in refused.stderr
    assert "budget" in refused.stdout and "exceeded" in refused.stdout  # the failing case's reason
    assert production(http) == 1

    as_json = runner.invoke(app, ["prompt", "promote", NAME, "2", "--json"])
    assert as_json.exit_code == 1
    comparison = json.loads(as_json.stdout)["comparison"]
    reasons = [row["candidate"]["reason"] for row in comparison["cases"]]
    assert any(r.startswith("error: 429: ") and "budget" in r for r in reasons), reasons
    assert production(http) == 1

    (row,) = http.get("/api/budgets").json()["data"]
    spent = Decimal(row["spent_usd"])
    assert spent >= Decimal("0.01") and Decimal(row["reserved_usd"]) == 0  # one call spent it; settled

    traces = http.get("/api/traces", params={"source": "prompt_test", "limit": 500}).json()["data"]
    assert len(traces) == 8  # two promotions x (candidate + current) x two cases, each traced
    assert {(t["name"], t["source"], tuple(t["tags"])) for t in traces} == {
        ("prompt.test", "prompt_test", ("prompt-test",))
    }
    assert sum(Decimal(t["cost_usd"]) for t in traces) == spent  # every test call settled on the budget
    refusals = [t for t in traces if t["status"] == "error"]
    assert len(refusals) == 7
    assert http.get("/api/traces", params={"source": "http"}).json()["data"] == []
