"""`pilothouse traces list --order cost|latency` and the SDK's `list_traces(order=...)`: the API's sort orders
from the command line, costliest or slowest first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pilothouse.cli.main import app
from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()
PRICED = Deployment(provider="fake", model="fake", input_price_per_mtok=Decimal("1000"))
MODELS = [ModelEntry(name="fake-chat", deployments=[PRICED])]


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with cli_in_process(app_settings(tmp_path, MODELS), monkeypatch) as client:
        yield client


def _listed(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["traces", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)["data"]
    return rows


def test_order_by_cost_lists_the_costliest_first(http: TestClient) -> None:
    for words in (5, 80, 20):  # longer questions cost more input tokens
        body = {"model": "fake-chat", "messages": [{"role": "user", "content": "word " * words}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    newest = _listed()
    by_cost = _listed("--order", "cost")
    assert [t["id"] for t in newest] != [t["id"] for t in by_cost]
    costs = [Decimal(str(t["cost_usd"])) for t in by_cost]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]
    refused = runner.invoke(app, ["traces", "list", "--order", "price"])
    assert refused.exit_code != 0 and "order" in refused.output
