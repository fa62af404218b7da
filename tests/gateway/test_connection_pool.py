"""The upstream pool's size: the default the docs state, the option that changes it, and bad values refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pilothouse.config import Deployment
from pilothouse.gateway.providers._http import DEFAULT_MAX_CONNECTIONS, SessionHolder

ROOT = Path(__file__).resolve().parents[2]


async def _connector_limits(deployment: Deployment) -> tuple[int, int]:
    holder = SessionHolder(deployment)
    try:
        connector = holder.get().connector
        assert connector is not None
        return connector.limit, connector.limit_per_host
    finally:
        await holder.aclose()


async def test_default_pool_fits_long_calls() -> None:
    limits = await _connector_limits(Deployment(provider="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    assert limits == (DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS) == (1000, 1000)


async def test_max_connections_option_sizes_the_pool() -> None:
    options = {"max_connections": 50}
    assert await _connector_limits(Deployment(provider="openai", model="m", options=options)) == (50, 50)
    # 0 is aiohttp's "no limit".
    assert await _connector_limits(Deployment(provider="openai", model="m", options={"max_connections": 0})) == (0, 0)


@pytest.mark.parametrize("value", [-1, "1000", 2.5, True])
def test_bad_max_connections_is_refused_at_load(value: object) -> None:
    with pytest.raises(ValidationError, match="max_connections must be a whole number"):
        Deployment(provider="openai", model="m", options={"max_connections": value})


@pytest.mark.parametrize("doc", ["README.md", "docs/cost-control.md"])
def test_docs_state_the_default(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    match = re.search(r"max_connections[^\n]*?default (\d[\d,]*)", text)
    assert match, f"{doc} does not document options.max_connections and its default"
    assert int(match.group(1).replace(",", "")) == DEFAULT_MAX_CONNECTIONS
