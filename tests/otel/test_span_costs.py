"""What an ingested call costs: `SpanCosts.cost` (whole pico-dollars per token, in integers) is exactly what the
gateway's `pricing.cost` computes, and falls back to it for a price that is not a whole pico-dollar per token."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from pilothouse.gateway.pricing import Price, cost, default_price_book
from pilothouse.gateway.providers.base import Usage
from pilothouse.money import to_pico
from pilothouse.otel.span_costs import SpanCosts


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), (None, "gpt-4o")])
def test_the_cost_is_the_gateways_to_the_pico_dollar(provider: str | None, model: str) -> None:
    costs = SpanCosts(default_price_book())
    price = costs.price(provider, model)
    assert price is not None
    rng = random.Random(13)
    for _ in range(500):
        tin, tout = rng.randint(0, 10**7), rng.randint(0, 10**6)
        cached = rng.choice([0, rng.randint(0, tin + 10)])
        got = costs.cost(provider, model, tin, tout, cached)
        want = cost(price, Usage(input_tokens=tin, output_tokens=tout, cached_input_tokens=cached))
        assert got == want and to_pico(got) == to_pico(want)


def test_a_price_finer_than_a_pico_dollar_per_token_is_computed_by_the_gateways_rule() -> None:
    costs = SpanCosts(default_price_book())
    odd = Price(Decimal("0.1234567"), Decimal("0.3"), None, None, None, "config")  # 0.1234567 pico per token
    costs._prices[("x", "odd")] = odd  # the lookup's cache: no catalog needed
    got = costs.cost("x", "odd", 3, 7, 1)
    assert got == cost(odd, Usage(input_tokens=3, output_tokens=7, cached_input_tokens=1))
    assert got == Decimal("0.0000024703701")  # (3 x 0.1234567 + 7 x 0.3) per 1M tokens
