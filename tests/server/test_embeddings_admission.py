"""`/v1/embeddings` through the admission stage, in process with fake models: rate limits count the request
and its input tokens, budgets reserve the priced worst case and settle the trace's cost, loop guards count
the call, and an unlimited request is answered as before."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from pilothouse.gateway.providers.base import EmbeddingResult
from pilothouse.gateway.providers.fake import FakeProvider
from pilothouse.server.app import PilothouseApp
from pilothouse.store.inflight import InflightCall, list_calls
from tests.support.asgi_app import app_settings, running

# 1,000 USD per 1M input tokens: 0.001 USD a token. "a b c" is 3 tokens to the fake provider and bounded at
# 5 bytes + 16 = 21 tokens, so it reserves 0.021 USD and settles 0.003 USD.
MODELS = [
    ModelEntry(name="fake-embed", kind="embedding", deployments=[Deployment(provider="fake", model="fake")]),
    ModelEntry(
        name="priced-embed",
        kind="embedding",
        deployments=[
            Deployment(
                provider="fake", model="fake", input_price_per_mtok=Decimal(1000), output_price_per_mtok=Decimal(0)
            )
        ],
    ),
]
TRACE = "x-pilothouse-trace-id"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, PilothouseApp]]:
    with running(app_settings(tmp_path, MODELS), monkeypatch) as pair:
        yield pair


def embed(client: TestClient, text: str = "a b c", model: str = "fake-embed", **extra: Any) -> Any:
    headers = extra.pop("headers", None)
    return client.post("/v1/embeddings", json={"model": model, "input": text, **extra}, headers=headers)


def limit(client: TestClient, **fields: Any) -> None:
    response = client.post("/api/limits", json={"scope": "model", "subject": "fake-embed", **fields})
    assert response.status_code == 200, response.text


def test_unlimited_embeddings_answer_as_before(app: tuple[TestClient, PilothouseApp]) -> None:
    client, _ = app
    response = embed(client)
    assert response.status_code == 200, response.text
    assert response.json()["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    trace = client.get(f"/api/traces/{response.headers[TRACE]}").json()
    assert [s["kind"] for s in trace["spans"]] == ["embedding"]


def test_an_embeddings_call_past_the_rpm_limit_gets_429(app: tuple[TestClient, PilothouseApp]) -> None:
    client, _ = app
    limit(client, rpm=2)
    assert [embed(client).status_code for _ in range(2)] == [200, 200]
    refused = embed(client)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-should-retry"] == "true"
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_exceeded" or error["code"] == "rate_limit_exceeded"
    assert error["code"] == "rate_limit_exceeded" and "message" in error
    trace = client.get(f"/api/traces/{refused.headers[TRACE]}").json()
    assert trace["status"] == "error"
    assert [s["kind"] for s in trace["spans"]] == ["guard"]  # no embedding call was made
    assert embed(client, model="priced-embed").status_code == 200  # a model limit: other models unaffected


def test_tpm_counts_embedding_tokens(app: tuple[TestClient, PilothouseApp]) -> None:
    """Reserved at the input bound (21 tokens for "a b c"), settled to the metered 3: two calls fit in 30 tokens
    a minute only because the first settled; a text bounded at 30 tokens does not fit after them."""
    client, _ = app
    limit(client, tpm=30)
    assert [embed(client).status_code for _ in range(2)] == [200, 200]
    refused = embed(client, "fourteen bytes")  # 14 bytes: bounded at 30 tokens, 6 already used
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "tokens" in refused.json()["error"]["message"]
    assert embed(client, "x").status_code == 200  # 17 tokens at most: fits beside the 6 used


def test_a_hard_budget_refuses_priced_embeddings_and_settles_their_cost(app: tuple[TestClient, PilothouseApp]) -> None:
    """A hard budget admits while something is left (each call reserving its worst case) and refuses once it
    is spent; the spend settled is the traces' cost, and a zero-priced (local) model's calls cost nothing."""
    client, _ = app
    made = client.post("/api/budgets", json={"scope": "user", "subject": "u1", "usd": "0.006", "mode": "hard"})
    assert made.status_code == 200, made.text
    assert embed(client, user="u1").status_code == 200  # zero-priced
    answered = [embed(client, model="priced-embed", user="u1") for _ in range(2)]
    assert [r.status_code for r in answered] == [200, 200]
    costs = [Decimal(client.get(f"/api/traces/{r.headers[TRACE]}").json()["cost_usd"]) for r in answered]
    assert costs == [Decimal("0.003"), Decimal("0.003")]
    (row,) = client.get("/api/budgets").json()["data"]
    assert Decimal(row["spent_usd"]) == sum(costs) and Decimal(row["reserved_usd"]) == 0
    refused = embed(client, model="priced-embed", user="u1")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert refused.headers["retry-after"]
    trace = client.get(f"/api/traces/{refused.headers[TRACE]}").json()
    assert [s["kind"] for s in trace["spans"]] == ["guard"] and trace["cost_usd"] in (None, "0")
    assert embed(client, model="priced-embed", user="u2").status_code == 200  # another user: no budget


def test_a_run_cap_counts_embeddings_calls(app: tuple[TestClient, PilothouseApp]) -> None:
    client, _ = app
    headers = {"x-pilothouse-run-id": "r1", "x-pilothouse-run-max-calls": "1"}
    assert embed(client, headers=headers).status_code == 200
    refused = embed(client, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "run_limit_exceeded"


def test_embeddings_user_must_be_a_string(app: tuple[TestClient, PilothouseApp]) -> None:
    client, _ = app
    response = embed(client, user=7)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "user"


def test_a_budgeted_embeddings_call_is_recorded_before_it_is_sent(
    app: tuple[TestClient, PilothouseApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write-ahead ledger holds the call while it is upstream (so a crash leaves it to be charged), and
    lets it go once its trace is stored."""
    client, server = app
    store = server.api.state.pilothouse.store
    seen: list[list[InflightCall]] = []
    original = FakeProvider.embed

    async def watched(self: FakeProvider, model: str, inputs: list[str]) -> EmbeddingResult:
        with store.connect() as conn:
            seen.append(list_calls(conn))
        return await original(self, model, inputs)

    monkeypatch.setattr(FakeProvider, "embed", watched)
    client.post("/api/budgets", json={"scope": "user", "subject": "u1", "usd": "1", "mode": "hard"})
    response = embed(client, model="priced-embed", user="u1")
    assert response.status_code == 200
    (calls,) = seen
    (call,) = calls
    assert call.trace_id == response.headers[TRACE]
    assert (call.input_tokens, call.output_tokens, call.cost_pico) == (21, 0, 21 * 10**9)  # 21 tokens x 0.001 USD
    with store.connect() as conn:
        assert list_calls(conn) == []
