"""Gateway calls that join one caller's trace (W3C traceparent) at the same time, under a budget: each keeps
its own in-flight record (the ledger is keyed per call, not per trace id), so neither is refused and both are
settled and stored in the one trace."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from pilothouse.server.app import PilothouseApp
from pilothouse.store.inflight import list_calls
from tests.support.asgi_app import app_settings, running

MODELS = [
    ModelEntry(
        name="slow-chat",
        deployments=[
            Deployment(
                provider="fake",
                model="fake",
                options={"delay_ms": 300},
                input_price_per_mtok=Decimal(1),
                output_price_per_mtok=Decimal(1),
            )
        ],
    )
]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, PilothouseApp]]:
    with running(app_settings(tmp_path, MODELS), monkeypatch) as pair:
        yield pair


def test_overlapping_calls_of_one_trace_each_keep_their_ledger_record(
    app: tuple[TestClient, PilothouseApp],
) -> None:
    client, server = app
    budget = client.post("/api/budgets", json={"scope": "user", "subject": "u1", "usd": "10", "mode": "hard"})
    assert budget.status_code == 200, budget.text
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}
    body = {"model": "slow-chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8, "user": "u1"}

    def call(_: int) -> int:
        return client.post("/v1/chat/completions", json=body, headers=headers).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(call, range(4)))
    assert statuses == [200, 200, 200, 200]

    trace = client.get(f"/api/traces/{TRACE_ID}")
    assert trace.status_code == 200, trace.text
    llm_spans = [s for s in trace.json()["spans"] if s["kind"] == "llm"]
    assert len(llm_spans) == 4  # every call's span is in the caller's trace
    assert {s["parent_id"] for s in trace.json()["spans"] if s["parent_id"] is not None} >= {PARENT}
    with server.api.state.pilothouse.store.connect() as conn:
        assert list_calls(conn) == []  # every call's in-flight record ended with its trace
