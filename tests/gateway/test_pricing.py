"""The price book: catalog prices match the pricing reference (a copy of ../shared/data/pricing/model_prices.json in
tests/data, see its SOURCE.md), cost arithmetic is exact Decimal."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Deployment
from pilothouse.gateway.pricing import (
    Price,
    PriceBook,
    cost,
    default_price_book,
    worst_case_cost,
)
from pilothouse.gateway.providers.base import Usage

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT / "tests" / "data" / "pricing" / "model_prices.json"
DATA_FILE = REPO_ROOT / "src" / "pilothouse" / "gateway" / "pricing_data.json"
SCRIPT = REPO_ROOT / "scripts" / "build_pricing.py"


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    if not REFERENCE.exists():
        pytest.fail(f"the pricing reference is missing: expected {REFERENCE}")
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return default_price_book()


def per_million(per_token: float | int | None) -> Decimal | None:
    """The reference's per-token float as an exact price per 1M tokens (computed independently here)."""
    if per_token is None:
        return None
    return Decimal(str(per_token)) * 1_000_000


def deployment(provider: str, model: str, **fields: Any) -> Deployment:
    return Deployment(provider=provider, model=model, **fields)


# (deployment provider, model id, reference key)
KNOWN = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini"),
    ("openai", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
    ("openai", "text-embedding-3-small", "text-embedding-3-small"),
    ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514"),
    ("gemini", "gemini-2.0-flash", "gemini/gemini-2.0-flash"),
    ("google", "gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    ("mistral", "mistral-large-latest", "mistral/mistral-large-latest"),
]


@pytest.mark.parametrize(("provider", "model", "key"), KNOWN)
def test_catalog_prices_match_the_reference(
    book: PriceBook, reference: dict[str, Any], provider: str, model: str, key: str
) -> None:
    entry = reference[key]
    price = book.price_for(deployment(provider, model))
    assert price is not None
    assert price.source == "catalog"
    assert price.input == per_million(entry["input_cost_per_token"])
    assert price.output == (per_million(entry.get("output_cost_per_token")) or 0)
    assert price.cached_input == per_million(entry.get("cache_read_input_token_cost"))
    assert price.context_window == entry.get("max_input_tokens")
    assert price.max_output_tokens == entry.get("max_output_tokens")


def test_well_known_prices_are_clean_decimals(book: PriceBook) -> None:
    mini = book.price_for(deployment("openai", "gpt-4o-mini"))
    sonnet = book.price_for(deployment("anthropic", "claude-3-5-sonnet-20241022"))
    assert mini is not None and sonnet is not None
    assert (str(mini.input), str(mini.output), str(mini.cached_input)) == ("0.15", "0.6", "0.075")
    assert (str(sonnet.input), str(sonnet.output)) == ("3", "15")


def test_data_file_holds_only_the_four_providers_as_decimal_strings() -> None:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert data["currency"] == "USD" and data["unit"] == "per 1M tokens"
    assert len(data["version"]) == 10 and data["version"][4] == "-"
    models = data["models"]
    assert 100 < len(models) < 1000
    assert DATA_FILE.stat().st_size < 200_000
    for key, record in models.items():
        assert key == f"{record['provider']}/{record['model']}"
        assert record["provider"] in {"openai", "anthropic", "google", "mistral"}
        assert record["mode"] in {"chat", "embedding"}
        assert "/" not in record["model"]
        for field in ("input", "output", "cached_input"):
            value = record[field]
            if value is not None:
                assert isinstance(value, str) and "e" not in value.lower()
                assert Decimal(value) >= 0


def test_cost_is_exact_decimal_with_cached_tokens() -> None:
    price = Price(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"), 128000, 16384, "catalog")
    usage = Usage(input_tokens=1234, output_tokens=567, cached_input_tokens=200)
    # (1034 * 0.15 + 200 * 0.075 + 567 * 0.6) / 1e6 = (155.1 + 15 + 340.2) / 1e6
    assert cost(price, usage) == Decimal("0.0005103")
    assert isinstance(cost(price, usage), Decimal)


def test_cost_bills_cached_tokens_at_input_price_when_no_cached_price() -> None:
    price = Price(Decimal("3"), Decimal("15"), None, None, None, "catalog")
    usage = Usage(input_tokens=1234, output_tokens=567, cached_input_tokens=200)
    assert cost(price, usage) == Decimal("0.012207")  # (1234 * 3 + 567 * 15) / 1e6


def test_cost_keeps_every_digit() -> None:
    # 36 significant digits: the default 28-digit Decimal context would round this
    output = Decimal("1.23456789012345678901234567")
    price = Price(Decimal("0.0000001"), output, Decimal("0.00000003"), None, None, "config")
    usage = Usage(input_tokens=10**12 + 7, output_tokens=10**9 + 1, cached_input_tokens=10**12)
    assert cost(price, usage) == Decimal("1234.59789135802537913580245901234567")


def test_cost_of_a_real_catalog_model(book: PriceBook, reference: dict[str, Any]) -> None:
    price = book.price_for(deployment("openai", "gpt-4o-mini"))
    assert price is not None
    entry = reference["gpt-4o-mini"]
    input_, output, cached = (
        per_million(entry["input_cost_per_token"]),
        per_million(entry["output_cost_per_token"]),
        per_million(entry["cache_read_input_token_cost"]),
    )
    assert input_ is not None and output is not None and cached is not None
    usage = Usage(input_tokens=1234, output_tokens=567, cached_input_tokens=1000)
    expected = (234 * input_ + 1000 * cached + 567 * output) / 1_000_000
    assert cost(price, usage) == expected


def test_cost_rejects_negative_counts_and_caps_cached_at_input() -> None:
    price = Price(Decimal(1), Decimal(2), Decimal("0.5"), None, None, "config")
    with pytest.raises(ValueError):
        cost(price, Usage(input_tokens=-1, output_tokens=0))
    assert cost(price, Usage(input_tokens=10, output_tokens=0, cached_input_tokens=50)) == Decimal("0.000005")


def test_worst_case_cost() -> None:
    price = Price(Decimal("2.5"), Decimal("10"), Decimal("1.25"), 128000, 16384, "catalog")
    assert worst_case_cost(price, 1000, 500) == Decimal("0.0075")
    assert worst_case_cost(price, 0, None) == Decimal("0.16384")  # falls back to max_output_tokens
    with pytest.raises(ValueError):
        worst_case_cost(Price(Decimal(1), Decimal(1), None, None, None, "config"), 10, None)


def test_config_overrides_win_and_unset_fields_fall_back(book: PriceBook) -> None:
    catalog = book.price_for(deployment("openai", "gpt-4o-mini"))
    assert catalog is not None
    price = book.price_for(
        deployment("openai", "gpt-4o-mini", input_price_per_mtok=Decimal("0.1"), context_window=4096)
    )
    assert price is not None
    assert price.source == "config"
    assert price.input == Decimal("0.1")
    assert price.output == catalog.output
    assert price.cached_input == catalog.cached_input
    assert price.context_window == 4096
    assert price.max_output_tokens == catalog.max_output_tokens


def test_full_override_prices_an_unknown_model(book: PriceBook) -> None:
    d = deployment(
        "openai",
        "my-finetune",
        base_url="http://127.0.0.1:8000/v1",
        input_price_per_mtok=Decimal("0.5"),
        output_price_per_mtok=Decimal("1.5"),
    )
    price = book.price_for(d)
    assert price == Price(Decimal("0.5"), Decimal("1.5"), None, None, None, "config")
    # half an override for an unknown model stays unknown rather than half-guessed
    half = deployment("openai", "my-finetune", base_url="http://127.0.0.1:8000/v1", input_price_per_mtok=1)
    assert book.price_for(half) is None


def test_local_and_fake_cost_zero_unless_configured(book: PriceBook) -> None:
    for provider in ("local", "fake"):
        price = book.price_for(deployment(provider, "SmolLM2-135M-Instruct", context_window=8192))
        assert price is not None
        assert price.source == "local"
        assert price.context_window == 8192
        assert cost(price, Usage(input_tokens=5000, output_tokens=5000, cached_input_tokens=10)) == 0
    priced = book.price_for(deployment("local", "x", output_price_per_mtok=Decimal("0.01")))
    assert priced is not None and priced.source == "config"
    assert (priced.input, priced.output) == (Decimal(0), Decimal("0.01"))


def test_unknown_prices_are_none(book: PriceBook) -> None:
    assert book.price_for(deployment("openai", "no-such-model")) is None
    assert book.price_for(deployment("anthropic", "gpt-4o-mini")) is None  # wrong provider: no guessing
    assert book.price_for(deployment("someplugin", "gpt-4o-mini")) is None
    assert book.price_for(deployment("openai", "gpt-4o-mini-turbo")) is None
    assert book.context_window_for(deployment("openai", "no-such-model")) is None


def test_openai_compatible_endpoints_are_priced_by_model_id(book: PriceBook) -> None:
    direct = book.price_for(deployment("anthropic", "claude-sonnet-4-20250514"))
    proxied = book.price_for(deployment("openai", "claude-sonnet-4-20250514", base_url="http://127.0.0.1:4000/v1"))
    prefixed = book.price_for(
        deployment("openai", "anthropic/claude-sonnet-4-20250514", base_url="https://openrouter.example/api")
    )
    assert direct is not None and direct == proxied == prefixed
    gemini = book.price_for(
        deployment(
            "openai",
            "gemini-2.0-flash",
            base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
        )
    )
    assert gemini == book.catalog_price("google", "gemini-2.0-flash")
    # on api.openai.com only OpenAI prices apply
    assert book.price_for(deployment("openai", "gemini-2.0-flash", base_url="https://api.openai.com/v1")) is None


def test_dated_snapshot_exact_first_then_undated_alias(book: PriceBook) -> None:
    exact = book.price_for(deployment("openai", "gpt-4o-2024-05-13"))
    alias = book.price_for(deployment("openai", "gpt-4o"))
    assert exact is not None and alias is not None
    assert exact == book.catalog_price("openai", "gpt-4o-2024-05-13")
    assert exact.input != alias.input  # the exact snapshot wins over the alias
    assert book.price_for(deployment("openai", "gpt-4o-2031-01-01")) == alias
    assert book.price_for(deployment("anthropic", "claude-opus-4-1-20991231")) == book.catalog_price(
        "anthropic", "claude-opus-4-1"
    )


def test_openai_fine_tunes_are_priced_as_their_base(book: PriceBook) -> None:
    price = book.price_for(deployment("openai", "ft:gpt-4o-mini-2024-07-18:acme:support:9xYz"))
    assert price is not None
    assert price == book.catalog_price("openai", "ft:gpt-4o-mini-2024-07-18")


def test_context_window_for(book: PriceBook) -> None:
    assert book.context_window_for(deployment("openai", "gpt-4o-mini")) == 128000
    assert book.context_window_for(deployment("openai", "gpt-4o-mini", context_window=1000)) == 1000
    assert book.context_window_for(deployment("local", "SmolLM2-135M-Instruct")) is None


def test_version_and_single_load(book: PriceBook) -> None:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert book.version == data["version"]
    assert len(book) == len(data["models"])
    assert default_price_book() is book


def test_malformed_data_is_rejected() -> None:
    bad = {
        "version": "2025-01-01",
        "models": {"openai/x": {"provider": "openai", "model": "x", "input": 0.1}},
    }
    with pytest.raises(ValueError):
        PriceBook(bad)


def test_script_regenerates_the_data_file_identically(tmp_path: Path) -> None:
    output = tmp_path / "pricing_data.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--reference", str(REFERENCE), "--output", str(output), "--quiet"],
        check=True,
        timeout=60,
    )
    assert output.read_bytes() == DATA_FILE.read_bytes()
