"""Reservations use a true upper bound on input tokens where the provider has no tokenizer here (never the
~4 characters per token estimate), and the bound for fallback deployments another tokenizer would count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import RateLimited
from pilothouse.gateway.admission import Admission
from pilothouse.gateway.limits.definitions import Definitions
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.worst_case import WorstCaseCalculator
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.tokens import estimate_messages_tokens, input_token_bound
from pilothouse.store import budgets as repo
from pilothouse.store.engine import open_store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord

PRICE = {"input_price_per_mtok": Decimal(1), "output_price_per_mtok": Decimal(1)}
# No tokenizer here for an OpenAI-compatible upstream (nothing is called: these requests are refused).
REMOTE = Deployment(provider="openai", model="gpt-x", base_url="http://127.0.0.1:9/v1", **PRICE)
FAKE = Deployment(provider="fake", model="fake-1", **PRICE)  # counts input exactly (words + 1 per message)
MESSAGES = [{"role": "user", "content": "hi"}]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        include_default_models=False,
        data_dir=tmp_path,
        models=[
            ModelEntry(name="remote", deployments=[REMOTE]),
            ModelEntry(name="counted", deployments=[FAKE], fallbacks=["remote"]),
        ],
    )


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Admission, str]]:
    settings = _settings(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
    gateway = Gateway(settings, ProviderPool(settings), default_price_book())
    limit_store = MemoryLimitStore()
    admission = Admission(
        settings, limit_store, Definitions(store, 60.0), WorstCaseCalculator(gateway.prices, gateway.catalog), None
    )
    with store.begin() as conn:
        project = create_project(conn, "p").id
    yield gateway, admission, project
    await limit_store.aclose()
    store.dispose()


async def test_a_provider_without_a_tokenizer_reserves_the_bound(parts: tuple[Gateway, Admission, str]) -> None:
    gateway, admission, project = parts
    estimate, bound = estimate_messages_tokens(MESSAGES), input_token_bound(MESSAGES)
    assert estimate < bound
    with admission.definitions.store.begin() as conn:
        repo.set_rate_limit(
            conn,
            project_id=project,
            actor=None,
            scope="model",
            subject="remote",
            rpm=None,
            tpm=bound + 9,
            max_tokens=None,
        )
    admission.definitions.reload()
    trace = TraceRecord(project_id=project, name="chat")
    prep = gateway.prepare_chat({"model": "remote", "messages": MESSAGES, "max_tokens": 10}, trace)
    assert prep.input_tokens is None
    # The estimate (7 + 10) fits the limit; the bound (+ 10) does not, so the request is refused up front.
    with pytest.raises(RateLimited):
        await admission.admit(prep, trace, [])


def test_fallbacks_with_another_tokenizer_are_priced_at_the_bound(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    calc = WorstCaseCalculator(default_price_book(), settings.catalog())
    entry = settings.catalog()["counted"]
    chosen = entry.deployments[0]
    exact_only = calc.compute(entry, chosen, 3, 10, priced=True)
    bounded = calc.compute(entry, chosen, 3, 10, priced=True, input_bound=500)
    assert (exact_only.input_tokens, exact_only.cost_pico) == (3, 13 * 10**6)  # 13 tokens at $1 per 1M
    assert (bounded.input_tokens, bounded.cost_pico) == (500, 510 * 10**6)  # the fallback "remote" at the bound
    alone = settings.catalog()["remote"]
    assert calc.compute(alone, alone.deployments[0], 500, 10, priced=True, input_bound=500).input_tokens == 500
