"""Routing configuration: fallbacks must name models of the same kind; deployment labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import ConfigError, Deployment, ModelEntry, load_settings
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
