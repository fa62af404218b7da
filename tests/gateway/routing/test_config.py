"""Routing configuration: fallbacks must name models of the same kind; deployment labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import ConfigError, Deployment, ModelEntry, load_settings
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing import deployment_labels


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pilothouse.toml"
    path.write_text(text)
    return path


def test_unknown_fallback_is_a_config_error(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
[[models]]
name = "m"
fallbacks = ["nope"]
[[models.deployments]]
provider = "fake"
model = "x"
""",
    )
    with pytest.raises(ConfigError, match="model 'm' lists fallback 'nope', which is not in the catalog"):
        load_settings(config)


def test_fallback_of_another_kind_is_a_config_error(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
[[models]]
name = "m"
context_window_fallbacks = ["all-minilm-l6-v2"]
[[models.deployments]]
provider = "fake"
model = "x"
""",
    )
    with pytest.raises(ConfigError, match="all-minilm-l6-v2"):
        load_settings(config)


def test_routing_settings_and_fallbacks_load(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
[routing]
retries = 2
breaker_failures = 0

[[models]]
name = "m"
fallbacks = ["smollm2-135m"]
[[models.deployments]]
provider = "fake"
model = "x"
""",
    )
    settings = load_settings(config)
    assert settings.routing.retries == 2 and settings.routing.breaker_failures == 0
    assert settings.catalog()["m"].fallbacks == ["smollm2-135m"]


def test_deployment_labels() -> None:
    entry = ModelEntry(
        name="m",
        deployments=[
            Deployment(provider="openai", model="a"),
            Deployment(provider="openai", model="b"),
            Deployment(provider="openai", model="b"),
            Deployment(provider="openai", model="b", name="west"),
        ],
    )
    assert deployment_labels(entry) == ["openai/a", "openai/b#1", "openai/b#2", "west"]


def routing_example() -> str:
    """The TOML block of the "Routing > Configuration" section of docs/cost-control.md."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "cost-control.md").read_text()
    section = text[text.index("## Routing") :]
    section = section[section.index("### Configuration") :]
    start = section.index("```toml\n") + len("```toml\n")
    return section[start : section.index("```", start)]


def test_the_documented_routing_example_starts(tmp_path: Path) -> None:
    """The example loads as `pilothouse up` loads a configuration, and the gateway's catalog, providers and
    router build from it (every fallback it names exists)."""
    settings = load_settings(write(tmp_path, routing_example()))
    pool = ProviderPool(settings)
    gateway = Gateway(settings, pool, default_price_book())
    for entry in gateway.catalog.values():
        for deployment in entry.deployments:
            pool.get(deployment)
    entry = gateway.catalog["gpt-4o-mini"]
    chain = gateway.router.chain(entry, entry)
    assert [e.name for e in chain] == ["gpt-4o-mini", "claude-haiku", "smollm2-135m"]
    assert gateway.router.fit_context(entry, 200_000, tools=False, stream=False) is not None  # gpt-4.1-mini
    assert settings.routing.call_deadline_s == 300 and entry.call_deadline_s == 60
