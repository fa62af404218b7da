"""What a call costs: per-deployment prices and exact Decimal cost arithmetic.

Prices come from `pricing_data.json` (built by `scripts/build_pricing.py`, versioned by its `version` field),
in USD per 1M tokens. `PriceBook.price_for(deployment)` resolves a deployment's price in this order:

1. **config**: any of the deployment's `input_price_per_mtok`, `output_price_per_mtok`,
   `cached_input_price_per_mtok` that is set wins; the fields left unset come from step 2 or 3.
2. **catalog**: the data file, by (provider, model id). See `PriceBook.catalog_price` for the lookup rules.
3. **local**: providers `local` and `fake` cost nothing.
4. otherwise `None`: the price is unknown, and the gateway records the cost as null rather than guess.

`cost(price, usage)` and `worst_case_cost(price, ...)` compute in Decimal with inexact results trapped,
so a cost is never rounded and no float is involved anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pilothouse.config import Deployment
from pilothouse.gateway.providers.base import Usage

__all__ = [
    "Price",
    "PriceBook",
    "PriceSource",
    "cost",
    "default_price_book",
    "worst_case_cost",
]

PriceSource = Literal["config", "catalog", "local"]
_T = TypeVar("_T")

DATA_FILE = "pricing_data.json"
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)

# Deployment provider names (lower-cased) -> the catalog provider they are priced as.
PROVIDER_ALIASES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "mistral": "mistral",
    "mistralai": "mistral",
}
# Hosts of the vendors' own OpenAI-compatible endpoints -> the catalog provider they bill as.
HOST_PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "google",
    "api.mistral.ai": "mistral",
}
FREE_PROVIDERS = frozenset({"local", "fake"})

# A trailing release date: -2024-08-06 (OpenAI) or -20241022 (Anthropic).
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens for one deployment, with the limits the catalog or config gives."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None
    """Price of cached input tokens; None means they are billed at the `input` price."""
    context_window: int | None
    max_output_tokens: int | None
    source: PriceSource
    """Where the prices came from: `config` when any price field was set on the deployment."""


LOCAL_PRICE = Price(ZERO, ZERO, ZERO, None, None, "local")


def _decimal(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{where}: {value!r} is not a decimal") from exc
    if not number.is_finite() or number < 0:
        raise ValueError(f"{where}: {value!r} is not a finite non-negative price")
    return number


def _optional_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: expected a positive integer or null, got {value!r}")
    return value


def _parse_entry(key: str, record: Any) -> tuple[tuple[str, str], Price]:
    if not isinstance(record, dict):
        raise ValueError(f"pricing data {key}: expected an object")
    provider, model = record.get("provider"), record.get("model")
    if not isinstance(provider, str) or not isinstance(model, str):
        raise ValueError(f"pricing data {key}: provider and model must be strings")
    cached = record.get("cached_input")
    price = Price(
        input=_decimal(record.get("input"), f"{key}.input"),
        output=_decimal(record.get("output"), f"{key}.output"),
        cached_input=None if cached is None else _decimal(cached, f"{key}.cached_input"),
        context_window=_optional_int(record.get("context_window"), f"{key}.context_window"),
        max_output_tokens=_optional_int(record.get("max_output_tokens"), f"{key}.max_output_tokens"),
        source="catalog",
    )
    return (provider, model), price


_LOOKED_UP_MAX = 4096  # deployments remembered (a config has a handful; a test run builds many)


class PriceBook:
    """The price catalog plus the rules that map a deployment onto it. Immutable once built.

    Use `default_price_book()` for the bundled data file (read once per process); build one from a
    mapping in tests or from another file with `PriceBook.from_json`.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        version, models = data.get("version"), data.get("models")
        if not isinstance(version, str) or not isinstance(models, dict):
            raise ValueError("pricing data needs a string 'version' and an object 'models'")
        self.version: str = version
        """The data file's version (YYYY-MM-DD of the reference it was built from)."""
        self.source: str = str(data.get("source", ""))
        self._prices: dict[tuple[str, str], Price] = dict(_parse_entry(key, record) for key, record in models.items())
        self._looked_up: dict[int, tuple[Deployment, Price | None]] = {}
        """`_catalog_for` per deployment object: deployments are frozen and live as long as their settings, so
        the catalog walk runs once per deployment instead of on every request. Keyed by id, checked by identity."""

    @classmethod
    def from_json(cls, text: str | bytes) -> PriceBook:
        return cls(json.loads(text))

    @classmethod
    def bundled(cls) -> PriceBook:
        """A new PriceBook read from the package's data file (prefer the cached `default_price_book()`)."""
        return cls.from_json(resources.files("pilothouse.gateway").joinpath(DATA_FILE).read_bytes())

    def __len__(self) -> int:
        return len(self._prices)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """The (provider, model id) pairs in the catalog."""
        return iter(self._prices)

    def price_for(self, deployment: Deployment) -> Price | None:
        """The deployment's price: config fields over the catalog (or zero for local), else None."""
        base = self._base_price(deployment)
        d = deployment
        overridden = any(
            value is not None
            for value in (d.input_price_per_mtok, d.output_price_per_mtok, d.cached_input_price_per_mtok)
        )
        if base is None:
            if d.input_price_per_mtok is None or d.output_price_per_mtok is None:
                return None  # no catalog price and an incomplete override: unknown
            base = Price(ZERO, ZERO, None, None, None, "config")
        if not overridden and d.context_window is None and d.max_output_tokens is None:
            return base
        return Price(
            input=_first(d.input_price_per_mtok, base.input),
            output=_first(d.output_price_per_mtok, base.output),
            cached_input=_first(d.cached_input_price_per_mtok, base.cached_input),
            context_window=_first(d.context_window, base.context_window),
            max_output_tokens=_first(d.max_output_tokens, base.max_output_tokens),
            source="config" if overridden else base.source,
        )

    def context_window_for(self, deployment: Deployment) -> int | None:
        """The deployment's own `context_window`, else the catalog's, else None."""
        if deployment.context_window is not None:
            return deployment.context_window
        price = self._catalog_for(deployment)
        return price.context_window if price is not None else None

    def max_output_tokens_for(self, deployment: Deployment) -> int | None:
        """The deployment's own `max_output_tokens`, else the catalog's, else None."""
        if deployment.max_output_tokens is not None:
            return deployment.max_output_tokens
        price = self._catalog_for(deployment)
        return price.max_output_tokens if price is not None else None

    def catalog_price(self, provider: str, model: str) -> Price | None:
        """The catalog price of `model` on the catalog provider `provider` (exact key, no rules)."""
        return self._prices.get((provider, model))

    def _base_price(self, deployment: Deployment) -> Price | None:
        if deployment.provider.lower() in FREE_PROVIDERS:
            return LOCAL_PRICE
        return self._catalog_for(deployment)

    def _catalog_for(self, deployment: Deployment) -> Price | None:
        known = self._looked_up.get(id(deployment))
        if known is not None and known[0] is deployment:
            return known[1]
        price = self._walk_catalog(deployment)
        if len(self._looked_up) < _LOOKED_UP_MAX:
            self._looked_up[id(deployment)] = (deployment, price)
        return price

    def _walk_catalog(self, deployment: Deployment) -> Price | None:
        """Look a deployment up in the catalog.

        Providers searched: an `openai` deployment (the OpenAI wire format) with no base_url or one on
        api.openai.com is priced as OpenAI; one on a vendor's own host (api.anthropic.com,
        generativelanguage.googleapis.com, api.mistral.ai) as that vendor; one anywhere else (a proxy such
        as LiteLLM or OpenRouter, Azure, ...) by model id across all catalog providers. Other deployments
        use `PROVIDER_ALIASES` (`gemini` and `vertex_ai` are `google`); unknown providers are not looked up.

        Model ids tried, in order, each across those providers before the next:
        1. the id as configured; a `<vendor>/<id>` id (e.g. `anthropic/claude-sonnet-4-20250514` through a
           proxy) is tried as `<id>` on that vendor, and Gemini's `models/<id>` as `<id>`;
        2. an OpenAI fine-tune `ft:<base>:<org>:<name>:<id>` as `ft:<base>` (the price of fine-tunes of
           that base);
        3. the id without a trailing release date (`-YYYY-MM-DD` or `-YYYYMMDD`), so a new snapshot of a
           known model is priced as its undated alias. No other guessing.
        """
        providers = self._providers_for(deployment)
        if not providers:
            return None
        for provider, model in _candidates(providers, deployment.model):
            price = self._prices.get((provider, model))
            if price is not None:
                return price
        return None

    @staticmethod
    def _providers_for(deployment: Deployment) -> tuple[str, ...]:
        provider = deployment.provider.lower()
        if provider == "openai" and deployment.base_url:
            host = (urlsplit(deployment.base_url).hostname or "").lower()
            if host in HOST_PROVIDERS:
                return (HOST_PROVIDERS[host],)
            return ("openai", "anthropic", "google", "mistral")
        alias = PROVIDER_ALIASES.get(provider)
        return (alias,) if alias is not None else ()


def _first(value: _T | None, fallback: _T) -> _T:
    return fallback if value is None else value


def _candidates(providers: tuple[str, ...], model: str) -> Iterator[tuple[str, str]]:
    """(provider, model id) pairs to try, most exact first; see `PriceBook._catalog_for`."""
    ids: list[tuple[tuple[str, ...], str]] = [(providers, model)]
    vendor, slash, rest = model.partition("/")
    if slash and rest:
        if vendor == "models":
            ids.append((providers, rest))
        elif PROVIDER_ALIASES.get(vendor.lower()) in providers:
            ids.insert(0, ((PROVIDER_ALIASES[vendor.lower()],), rest))
    for wanted, model_id in list(ids):
        if model_id.startswith("ft:") and model_id.count(":") >= 2:
            ids.append((wanted, "ft:" + model_id.split(":")[1]))
    for wanted, model_id in list(ids):
        undated = _DATE_SUFFIX.sub("", model_id)
        if undated != model_id:
            ids.append((wanted, undated))
    for wanted, model_id in ids:
        for provider in wanted:
            yield provider, model_id


@cache
def default_price_book() -> PriceBook:
    """The bundled price book, read from the package data once per process."""
    return PriceBook.bundled()


def cost(price: Price, usage: Usage) -> Decimal:
    """USD for one call, exact.

    `usage.input_tokens` includes the cached ones (OpenAI's convention; providers that report them apart
    add them in). Uncached input is billed at `input`, cached input at `cached_input` (or `input` when the
    model has no cached price), output at `output`; all prices are per 1M tokens.
    """
    for name in ("input_tokens", "output_tokens", "cached_input_tokens"):
        if getattr(usage, name) < 0:
            raise ValueError(f"usage.{name} is negative")
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    with localcontext() as ctx:
        ctx.prec = 100
        ctx.traps[Inexact] = True
        total = (usage.input_tokens - cached) * price.input + cached * cached_rate + usage.output_tokens * price.output
        return total / MILLION


def worst_case_cost(price: Price, input_tokens: int, max_tokens: int | None) -> Decimal:
    """The most a call can cost, for reserving budget before it runs.

    All input is billed at the full `input` price (no cache discount assumed) and `max_tokens` output
    tokens at `output`. `max_tokens=None` (the request set none) uses the model's `max_output_tokens`;
    when that is unknown too this raises ValueError, since no bound exists.
    """
    if max_tokens is None:
        max_tokens = price.max_output_tokens
        if max_tokens is None:
            raise ValueError("no max_tokens given and the model's max_output_tokens is unknown")
    if input_tokens < 0 or max_tokens < 0:
        raise ValueError("token counts must not be negative")
    with localcontext() as ctx:
        ctx.prec = 100
        ctx.traps[Inexact] = True
        return (input_tokens * price.input + max_tokens * price.output) / MILLION
