"""Cost forecasts: the range arithmetic (exact Decimal), output-token history (SQLite and PostgreSQL), how
models are priced and counted, the request plans, and merging the parts of a large file.

The `fake` provider stands in for a model with a tokenizer (its count is its own rule); the local model's
exact count is checked end to end in tests/e2e/test_cost_cli.py."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pilothouse.cli.cost import _output_cell
from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.costs.estimate import EstimateSpec, ModelSource, estimate
from pilothouse.costs.forecast import forecast, output_model
from pilothouse.costs.history import HISTORY_WINDOW_S, output_token_history
from pilothouse.costs.merge import merge_estimates
from pilothouse.costs.models import ESTIMATE_METHOD, ModelCosting, model_costing
from pilothouse.costs.plan import PlannedRequest, plan_bodies
from pilothouse.errors import InvalidRequest, NotFound, Unprocessable
from pilothouse.gateway.pricing import Price, default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.tokens import estimate_messages_tokens
from pilothouse.prompts.registry.push import push_files
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

PRICE = Price(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"), 128_000, 16_384, "catalog")
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a pilothouse?"}]
PROMPT = """\
name: support
model: fake-chat
max_tokens: 60
variables:
  question: {type: string}
messages:
  - role: system
    content: Answer in one sentence.
  - role: user
    content: "{{ question }}"
"""


def costing(price: Price | None = PRICE, *, served: bool = False) -> ModelCosting:
    return ModelCosting("m", served, "openai/m" if served else None, price, None)


# ---------------------------------------------------------------------------------------------- arithmetic
def test_output_model_from_history_and_default() -> None:
    history = [12, 40, 7, 33, 25, 90, 18]
    model = output_model(history, default=256, described="calls of m")
    assert model.source == "history" and model.samples == 7
    assert model.p50 == math.ceil(np.percentile(history, 50)) == 25
    assert model.p95 == math.ceil(np.percentile(history, 95)) == 75  # 73.2 rounded up
    assert output_model([], default=100, described="calls of m") == output_model(
        [], default=100, described="calls of m"
    )
    default = output_model([], default=100, described="calls of m")
    assert (default.source, default.samples, default.p50, default.p95) == ("default", 0, 100, 100)


def test_forecast_range_is_exact() -> None:
    output = output_model([10, 20, 30, 40, 50], default=256, described="calls of m")  # p50 30, p95 48
    requests = [("requests[0]", PlannedRequest(MESSAGES, None, None, count=1000))]
    result = forecast(costing(), requests, output)
    n_in = estimate_messages_tokens(MESSAGES)
    assert result["requests"] == 1000
    assert result["input_tokens"] == {
        "total": 1000 * n_in,
        "per_request": float(n_in),
        "counting": "estimated",
        "method": ESTIMATE_METHOD,
    }
    out = result["output_tokens"]
    assert (out["source"], out["samples"], out["p50"], out["p95"]) == ("history", 5, 30, 48)
    assert (out["low_total"], out["high_total"]) == (30_000, 48_000)
    low = (Decimal(1000 * n_in) * Decimal("0.15") + Decimal(30_000) * Decimal("0.6")) / 1_000_000
    high = (Decimal(1000 * n_in) * Decimal("0.15") + Decimal(48_000) * Decimal("0.6")) / 1_000_000
    worst = (Decimal(1000 * n_in) * Decimal("0.15") + Decimal(1000 * 16_384) * Decimal("0.6")) / 1_000_000
    assert result["cost_usd"] == {
        "low": format(low.normalize(), "f"),
        "high": format(high.normalize(), "f"),
        "per_request_low": format((low / 1000).normalize(), "f"),
        "per_request_high": format((high / 1000).normalize(), "f"),
        "worst_case": format(worst.normalize(), "f"),  # the model's 16,384 output tokens cap every answer
    }
    assert result["price"] == {
        "source": "catalog",
        "input_per_mtok": "0.15",
        "output_per_mtok": "0.6",
        "cached_input_per_mtok": "0.075",
    }
    assert any("only 5 past calls" in n for n in result["notes"])
    assert any("input tokens are estimated" in n for n in result["notes"])


def test_max_tokens_caps_the_output() -> None:
    output = output_model([100] * 30, default=256, described="calls of m")
    requests = [
        ("requests[0]", PlannedRequest(MESSAGES, 40, None)),
        ("requests[1]", PlannedRequest(MESSAGES, 500, None)),
    ]
    result = forecast(costing(Price(Decimal(1), Decimal(2), None, None, None, "config")), requests, output)
    out = result["output_tokens"]
    assert (out["low_total"], out["high_total"], out["worst_total"], out["capped_requests"]) == (140, 140, 540, 1)
    assert (out["priced_low"], out["priced_high"]) == (70, 70)  # (40 + 100) / 2 requests
    assert any("caps 1 of 2 requests below the assumed 100 output tokens: priced at 70" in n for n in result["notes"])
    n_in = 2 * estimate_messages_tokens(MESSAGES)
    assert Decimal(result["cost_usd"]["worst_case"]) == (Decimal(n_in) + 2 * Decimal(540)) / 1_000_000
    uncapped = forecast(costing(Price(Decimal(1), Decimal(2), None, None, None, "config")), requests[1:], output)
    assert uncapped["cost_usd"]["worst_case"] is not None
    no_limit = forecast(
        costing(Price(Decimal(1), Decimal(2), None, None, None, "config")),
        [("r", PlannedRequest(MESSAGES, None, None))],
        output,
    )
    assert no_limit["cost_usd"]["worst_case"] is None and no_limit["output_tokens"]["worst_total"] is None


def test_unknown_price_gives_tokens_but_no_cost() -> None:
    output = output_model([], default=200, described="calls of m")
    served = forecast(costing(None, served=True), [("r", PlannedRequest(MESSAGES, None, None))], output)
    assert served["cost_usd"] is None and served["price"]["source"] == "unknown"
    assert served["output_tokens"]["low_total"] == 200
    assert any("price of its deployment openai/m is unknown" in n for n in served["notes"])
    assert any("no history (calls of m): assumed 200" in n for n in served["notes"])
    unserved = forecast(costing(None), [("r", PlannedRequest(MESSAGES, None, None))], output)
    assert any("neither served by this server nor in the price catalog" in n for n in unserved["notes"])


def test_tool_definitions_count_toward_estimated_input() -> None:
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
    plain = costing().input_tokens(MESSAGES, None)
    assert costing().input_tokens(MESSAGES, tools) > plain == estimate_messages_tokens(MESSAGES)


# ---------------------------------------------------------------------------------------------- models
def source(*entries: ModelEntry) -> ModelSource:
    settings = Settings(include_default_models=False, models=list(entries))
    catalog = settings.catalog()
    return ModelSource(catalog=catalog, prices=default_price_book(), provider_for=ProviderPool(settings).get)


FAKE = ModelEntry(
    name="fake-chat",
    deployments=[
        Deployment(provider="fake", model="fake-1", input_price_per_mtok=Decimal("2"), output_price_per_mtok=Decimal(8))
    ],
)


def test_model_costing() -> None:
    heavy = Deployment(provider="openai", model="gpt-4o", weight=3)
    models = source(
        FAKE,
        ModelEntry(name="routed", deployments=[Deployment(provider="openai", model="gpt-4o-mini"), heavy]),
        ModelEntry(name="vectors", kind="embedding", deployments=[Deployment(provider="fake", model="e")]),
    )
    served = model_costing("fake-chat", catalog=models.catalog, prices=models.prices, provider_for=models.provider_for)
    assert served.served and served.deployment == "fake/fake-1" and served.counting == "exact"
    assert served.price is not None and (served.price.source, served.price.input) == ("config", Decimal(2))
    assert served.input_tokens(MESSAGES, None) == (2 + 1) + (4 + 1)  # the fake: words + 1 per message

    routed = model_costing("routed", catalog=models.catalog, prices=models.prices, provider_for=models.provider_for)
    assert routed.deployment == "openai/gpt-4o" and routed.counting == "estimated"  # the heaviest deployment

    catalog = model_costing(
        "gpt-4o-mini", catalog=models.catalog, prices=models.prices, provider_for=models.provider_for
    )
    assert not catalog.served and catalog.price_source == "catalog"
    assert catalog.price is not None and catalog.price.input == Decimal("0.15")
    assert catalog.price == default_price_book().catalog_price("openai", "gpt-4o-mini")
    claude = model_costing(
        "claude-3-5-haiku-20241022", catalog=models.catalog, prices=models.prices, provider_for=models.provider_for
    )
    assert claude.price is not None and claude.price.output == Decimal(4)
    assert claude.price == default_price_book().catalog_price("anthropic", "claude-3-5-haiku-20241022")

    unknown = model_costing(
        "no-such-model", catalog=models.catalog, prices=models.prices, provider_for=models.provider_for
    )
    assert unknown.price is None and unknown.price_source == "unknown"
    with pytest.raises(InvalidRequest, match="embedding model"):
        model_costing("vectors", catalog=models.catalog, prices=models.prices, provider_for=models.provider_for)


# ---------------------------------------------------------------------------------------------- plans
def test_plan_bodies() -> None:
    planned = plan_bodies(
        [
            {"model": "a", "messages": MESSAGES, "max_tokens": 5},
            {
                "messages": MESSAGES,
                "max_completion_tokens": 7,
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
        ]
    )
    assert [m for m, _ in planned] == ["a", None]
    assert planned[0][1] == PlannedRequest(MESSAGES, 5, None)
    assert planned[1][1].max_tokens == 7 and planned[1][1].tools is not None
    with pytest.raises(InvalidRequest, match=r"requests\[12\]: 'messages'"):
        plan_bodies([{"model": "a", "messages": MESSAGES}, {"model": "a"}], first_index=11)
    with pytest.raises(InvalidRequest, match=r"requests\[0\] must be a chat-completions body"):
        plan_bodies(["hello"])
    with pytest.raises(InvalidRequest, match=r"prompt references .* --prompt"):
        plan_bodies([{"model": "prompt:support", "messages": MESSAGES}])


# ---------------------------------------------------------------------------------------------- with a store
@pytest.fixture
def sink(store: Store, tmp_path: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=tmp_path / "traces-unstored.jsonl")
    yield s
    s.close()


def add_history(
    sink: StoreSink,
    project: str,
    model: str,
    outputs: list[int],
    *,
    prompt: str | None = None,
    status: str = "ok",
    started: float | None = None,
) -> None:
    for n_out in outputs:
        trace = TraceRecord(project_id=project, name="chat", model=model)
        if started is not None:
            trace.started_at = started
        trace.prompt_name, trace.prompt_version = prompt, 1 if prompt else None
        span = trace.span("llm", f"chat {model}")
        span.model, span.input_tokens, span.output_tokens = model, 10, n_out
        span.finish(status="ok" if status == "ok" else "error")
        trace.finish()
        sink.write_sync(trace)


@pytest.fixture
def project(store: Store, sink: StoreSink) -> str:
    with store.begin() as conn:
        project_id = create_project(conn, "shop").id
        other = create_project(conn, "other").id
        push_files(conn, project_id=project_id, files=[("support.yaml", PROMPT)], actor="k")
    add_history(sink, project_id, "fake-chat", [10, 20, 30, 40, 50], prompt="support")
    add_history(sink, project_id, "fake-chat", [1000, 1000])  # the model without the prompt
    add_history(sink, project_id, "fake-chat", [5000], prompt="support", status="error")
    add_history(sink, project_id, "fake-chat", [7000], prompt="support", started=1_000_000.0)  # too old
    add_history(sink, other, "fake-chat", [9000], prompt="support")
    return project_id


def test_history(store: Store, project: str) -> None:
    with store.connect() as conn:
        assert sorted(output_token_history(conn, project, "fake-chat", prompt_name="support")) == [10, 20, 30, 40, 50]
        assert sorted(output_token_history(conn, project, "fake-chat")) == [10, 20, 30, 40, 50, 1000, 1000]
        assert output_token_history(conn, project, "gpt-4o-mini") == []
        # the window: calls started within HISTORY_WINDOW_S before `now` (the 7000 one is decades old)
        later = time.time() + HISTORY_WINDOW_S
        assert len(output_token_history(conn, project, "fake-chat", prompt_name="support", now=later - 3600)) == 5
        assert output_token_history(conn, project, "fake-chat", prompt_name="support", now=later + 3600) == []


def test_estimate_a_prompt(store: Store, project: str) -> None:
    spec = EstimateSpec(
        models=("fake-chat", "gpt-4o-mini"), prompt="support", variables={"question": "Where is my order?"}, n=100
    )
    with store.connect() as conn:
        result = estimate(conn, project, spec, source(FAKE))
    assert result["requests"] == 100 and result["prompt"] == {"name": "support", "version": 1}
    assert result["price_catalog_version"] == default_price_book().version
    fake, mini = result["estimates"]

    rendered_tokens = (4 + 1) + (4 + 1)  # "Answer in one sentence." / "Where is my order?" under the fake's rule
    assert fake["input_tokens"]["total"] == 100 * rendered_tokens and fake["input_tokens"]["counting"] == "exact"
    out = fake["output_tokens"]
    assert (out["source"], out["samples"], out["p50"], out["p95"]) == ("history", 5, 30, 48)
    assert out["history"] == "calls of prompt support on fake-chat"
    assert (out["low_total"], out["high_total"], out["worst_total"]) == (3000, 4800, 6000)  # max_tokens 60
    assert Decimal(fake["cost_usd"]["low"]) == (Decimal(100 * rendered_tokens) * 2 + Decimal(3000) * 8) / 1_000_000
    assert fake["price"]["source"] == "config"

    assert not mini["served"] and mini["price"]["source"] == "catalog"
    assert mini["input_tokens"]["counting"] == "estimated"
    assert mini["output_tokens"]["source"] == "default" and mini["output_tokens"]["p50"] == 256
    assert mini["output_tokens"]["low_total"] == 100 * 60  # the prompt's max_tokens caps the default too


def test_estimate_a_prompt_on_its_own_model(store: Store, project: str) -> None:
    with store.connect() as conn:
        result = estimate(conn, project, EstimateSpec(prompt="support@1", variables={"question": "Hi"}), source(FAKE))
    assert [e["model"] for e in result["estimates"]] == ["fake-chat"]


def test_estimate_prompt_errors(store: Store, project: str) -> None:
    with store.connect() as conn:
        with pytest.raises(Unprocessable, match="missing required variable 'question'") as exc:
            estimate(conn, project, EstimateSpec(prompt="support"), source(FAKE))
        assert exc.value.param == "question"
        with pytest.raises(NotFound) as missing:
            estimate(conn, project, EstimateSpec(prompt="nope", variables={}), source(FAKE))
        assert missing.value.param == "prompt"
        with pytest.raises(InvalidRequest, match="invalid reference"):
            estimate(conn, project, EstimateSpec(prompt="support@", variables={}), source(FAKE))
        with pytest.raises(InvalidRequest, match="either 'prompt'"):
            estimate(conn, project, EstimateSpec(prompt="support", requests=[{}]), source(FAKE))
        with pytest.raises(InvalidRequest, match="'n' applies to a prompt"):
            estimate(conn, project, EstimateSpec(requests=[{}], n=3), source(FAKE))


def bodies(count: int) -> list[dict[str, Any]]:
    return [
        {"model": "fake-chat" if i % 2 else "gpt-4o-mini", "messages": [{"role": "user", "content": "word " * (i + 1)}]}
        for i in range(count)
    ]


def test_estimate_requests_on_each_lines_model_and_on_named_models(store: Store, project: str) -> None:
    with store.connect() as conn:
        own = estimate(conn, project, EstimateSpec(requests=bodies(5)), source(FAKE))
        named = estimate(conn, project, EstimateSpec(requests=bodies(5), models=("fake-chat",)), source(FAKE))
        with pytest.raises(InvalidRequest, match=r"requests\[1\] names no model"):
            estimate(
                conn,
                project,
                EstimateSpec(requests=[{"model": "a", "messages": MESSAGES}, {"messages": MESSAGES}]),
                source(FAKE),
            )
    assert own["requests"] == 5
    assert [(e["model"], e["requests"]) for e in own["estimates"]] == [("gpt-4o-mini", 3), ("fake-chat", 2)]
    fake = own["estimates"][1]
    assert fake["input_tokens"]["total"] == (2 + 1) + (4 + 1)  # lines 1 and 3
    out = fake["output_tokens"]  # the model's whole history: 10..50 with the prompt, and 1000, 1000 without
    assert out["samples"] == 7 and out["history"] == "calls of fake-chat"
    assert [(e["model"], e["requests"]) for e in named["estimates"]] == [("fake-chat", 5)]


def test_merged_parts_equal_the_whole(store: Store, project: str) -> None:
    requests = bodies(9)
    spec = EstimateSpec(requests=requests, models=("fake-chat", "gpt-4o-mini", "no-such-model"))
    with store.connect() as conn:
        whole = estimate(conn, project, spec, source(FAKE))
        parts = [
            estimate(
                conn,
                project,
                EstimateSpec(requests=requests[i : i + 4], first_index=i, models=spec.models),
                source(FAKE),
            )
            for i in range(0, 9, 4)
        ]
    merged = merge_estimates(parts)
    assert merged == whole
    assert merged["estimates"][2]["cost_usd"] is None


def test_the_default_output_assumption_shows_what_is_priced() -> None:
    # No history: 256 output tokens are assumed, but max_tokens 7 caps every answer, and 7 is what is priced.
    output = output_model([], default=256, described="calls of m")
    price = Price(Decimal(1), Decimal(2), None, None, None, "config")
    result = forecast(costing(price), [("requests[0]", PlannedRequest(MESSAGES, 7, None))], output)
    out = result["output_tokens"]
    assert (out["p50"], out["p95"], out["priced_low"], out["priced_high"]) == (256, 256, 7, 7)
    n_in = estimate_messages_tokens(MESSAGES)
    assert Decimal(result["cost_usd"]["high"]) == (Decimal(n_in) + 2 * Decimal(7)) / 1_000_000
    assert any("assumed 256 output tokens per request" in n for n in result["notes"])
    assert any("priced at 7 output tokens per request" in n for n in result["notes"])
    assert _output_cell(out, "default") == "7 / 7 (max_tokens caps the default 256 / 256)"
    uncapped = forecast(costing(price), [("requests[0]", PlannedRequest(MESSAGES, None, None))], output)
    assert _output_cell(uncapped["output_tokens"], "default") == "256 / 256 (default)"
