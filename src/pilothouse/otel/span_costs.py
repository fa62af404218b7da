"""What an ingested GenAI call cost, from our price book.

A span names its provider the OpenTelemetry way (`gen_ai.provider.name`: `openai`, `gcp.gemini`,
`mistral_ai`, ...) and its model by the upstream id. A model that is a public name of this server's catalog is
priced as its first deployment (so calls through the gateway and local models price as the gateway does);
otherwise the provider is translated to ours and the price book's rules apply (dated snapshots, fine-tunes,
`vendor/model` ids). An unknown provider is looked up by model id across the catalog; no price: cost None.
"""

from __future__ import annotations

from decimal import Decimal

from pilothouse.config import Deployment, ModelEntry
from pilothouse.gateway.pricing import Price, PriceBook, cost
from pilothouse.gateway.providers.base import Usage

PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "gemini",
    "gcp.vertex_ai": "vertex_ai",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
}
"""OpenTelemetry provider names (`gen_ai.provider.name`) -> the deployment provider they are priced as."""

_ANY_PROVIDER = "http://otlp-ingest.invalid"  # an OpenAI-format proxy: the price book searches every vendor
_REMEMBERED = 4096
_PICO_PER_TOKEN = Decimal(10**6)  # USD per 1M tokens -> pico-dollars per token


def _per_token(price: Price) -> tuple[int, int, int] | None:
    """The price in whole pico-dollars per (input, cached input, output) token, or None when one of them is not
    whole (then `cost` is computed as the gateway computes it)."""
    rates = (price.input, price.input if price.cached_input is None else price.cached_input, price.output)
    scaled = [rate * _PICO_PER_TOKEN for rate in rates]
    if any(not value.is_finite() or value != value.to_integral_value() for value in scaled):
        return None
    return int(scaled[0]), int(scaled[1]), int(scaled[2])


class SpanCosts:
    """Prices looked up once per (provider, model); thread-safe enough (a lost race recomputes)."""

    def __init__(self, book: PriceBook, catalog: dict[str, ModelEntry] | None = None) -> None:
        self._book = book
        self._catalog = catalog or {}
        self._prices: dict[tuple[str | None, str], Price | None] = {}
        self._rates: dict[tuple[str | None, str], tuple[int, int, int] | None] = {}

    def price(self, provider: str | None, model: str) -> Price | None:
        key = (provider, model)
        if key in self._prices:
            return self._prices[key]
        found = self._lookup(provider, model)
        if len(self._prices) < _REMEMBERED:
            self._prices[key] = found
        return found

    def _lookup(self, provider: str | None, model: str) -> Price | None:
        entry = self._catalog.get(model)
        if entry is not None:
            return self._book.price_for(entry.deployments[0])
        ours = PROVIDERS.get((provider or "").lower())
        if ours is None:
            return self._book.price_for(Deployment(provider="openai", model=model, base_url=_ANY_PROVIDER))
        return self._book.price_for(Deployment(provider=ours, model=model))

    def cost(
        self, provider: str | None, model: str, input_tokens: int, output_tokens: int, cached: int
    ) -> Decimal | None:
        price = self.price(provider, model)
        if price is None:
            return None
        key = (provider, model)
        rates = self._rates[key] if key in self._rates else self._remember_rates(key, price)
        if rates is not None and input_tokens >= 0 and output_tokens >= 0 and cached >= 0:
            # the same exact amount as pricing.cost, in integers (its Decimal context costs more than the span's
            # other mapping): whole pico-dollars per token times tokens
            in_rate, cached_rate, out_rate = rates
            cached = min(cached, input_tokens)
            pico = (input_tokens - cached) * in_rate + cached * cached_rate + output_tokens * out_rate
            return Decimal(pico).scaleb(-12)
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached)
        return cost(price, usage)

    def _remember_rates(self, key: tuple[str | None, str], price: Price) -> tuple[int, int, int] | None:
        rates = _per_token(price)
        if len(self._rates) < _REMEMBERED:
            self._rates[key] = rates
        return rates
