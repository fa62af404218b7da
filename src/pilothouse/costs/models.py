"""What a forecast needs to know about a model: its price (and where it came from) and whether its input
tokens can be counted exactly.

A model this server serves is priced like the gateway prices it (`PriceBook.price_for` on its deployment:
config over catalog, local models free); with several deployments, the one with the largest weight (the
first of equals) is the one priced. A model the server does not serve is looked up in the price catalog by
name across the catalog's providers, so a forecast can compare against models not configured yet.

Input tokens are exact where the deployment's provider has a tokenizer (`counts_tokens`, e.g. the local
SmolLM2 under its chat template); otherwise they are estimated with `pilothouse.gateway.tokens` (about four
characters per token plus four per message, and the JSON of tool definitions at the same rate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pilothouse.config import Deployment, ModelEntry
from pilothouse.errors import InvalidRequest
from pilothouse.gateway.pricing import Price, PriceBook
from pilothouse.gateway.providers.base import Provider
from pilothouse.gateway.tokens import estimate_messages_tokens, estimate_text_tokens

CATALOG_PROVIDERS = ("openai", "anthropic", "google", "mistral")
ESTIMATE_METHOD = "estimated: about 4 characters per token plus 4 per message (pilothouse.gateway.tokens)"

TokenCounter = Callable[[list[dict[str, Any]]], int | None]


@dataclass(frozen=True, slots=True)
class ModelCosting:
    """A model as a forecast prices it."""

    model: str
    served: bool
    """True when this server has the model in its catalog."""
    deployment: str | None
    """`provider/model id` of the deployment priced, or None for a model priced from the catalog by name."""
    price: Price | None
    """None: the price is unknown."""
    counter: TokenCounter | None
    """The provider's exact input-token counter, None when tokens are estimated."""

    @property
    def price_source(self) -> str:
        return "unknown" if self.price is None else self.price.source

    @property
    def counting(self) -> str:
        return "exact" if self.counter is not None else "estimated"

    @property
    def counting_method(self) -> str:
        if self.counter is None:
            return ESTIMATE_METHOD
        return f"exact: the {self.deployment} tokenizer and chat template"

    def input_tokens(self, messages: list[dict[str, Any]], tools: list[Any] | None) -> int:
        """The input tokens of one request: exact where a tokenizer is available, estimated otherwise."""
        counted = self.counter(messages) if self.counter is not None else None
        if counted is not None:
            return counted
        tokens = estimate_messages_tokens(messages)
        if tools:
            tokens += estimate_text_tokens(json.dumps(tools, separators=(",", ":")))
        return tokens


def _primary(entry: ModelEntry) -> Deployment:
    best = entry.deployments[0]
    for deployment in entry.deployments[1:]:
        if deployment.weight > best.weight:
            best = deployment
    return best


def model_costing(
    name: str,
    *,
    catalog: Mapping[str, ModelEntry],
    prices: PriceBook,
    provider_for: Callable[[Deployment], Provider],
) -> ModelCosting:
    """How `name` is priced and counted. InvalidRequest for an embedding model (forecasts are for chat)."""
    entry = catalog.get(name)
    if entry is not None:
        if entry.kind != "chat":
            raise InvalidRequest(
                f"'{name}' is an {entry.kind} model; cost estimates are for chat models", param="models"
            )
        deployment = _primary(entry)
        served_by = provider_for(deployment)
        return ModelCosting(
            model=name,
            served=True,
            deployment=f"{deployment.provider}/{deployment.model}",
            price=prices.price_for(deployment),
            counter=served_by.count_input_tokens if served_by.counts_tokens else None,
        )
    for provider in CATALOG_PROVIDERS:
        price = prices.price_for(Deployment(provider=provider, model=name))
        if price is not None:
            return ModelCosting(model=name, served=False, deployment=None, price=price, counter=None)
    return ModelCosting(model=name, served=False, deployment=None, price=None, counter=None)
