"""The most a chat request can use: its input tokens plus its output bound, priced at the dearest
deployment it may be routed to (its model's deployments and fallback models).

The input tokens are the chosen deployment's exact count where its provider has a tokenizer here, else
`gateway.tokens.input_token_bound` (a bound that cannot be exceeded, never the ~4 characters per token
estimate); a deployment other than the one counted (another provider or model, reached by fallback) is
reserved at the bound.

The output bound is the request's `max_tokens`, else the deployment's `max_output_tokens` (config or price
catalog), else the room its context window leaves; None when none of these is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING

from pilothouse.config import Deployment, ModelEntry
from pilothouse.gateway.pricing import Price, PriceBook, worst_case_cost
from pilothouse.money import to_pico


@dataclass(frozen=True, slots=True)
class WorstCase:
    input_tokens: int
    """The most input tokens any deployment the request may reach can bill."""
    output_tokens: int | None
    """Bound on the output of the chosen deployment; None when unknown."""
    cost_pico: int | None
    """Worst cost over the deployments the request may use; None when the chosen one's price or output bound
    is unknown."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + (self.output_tokens or 0)


@dataclass(frozen=True, slots=True)
class _Limits:
    price: Price | None
    max_output: int | None
    window: int | None


class WorstCaseCalculator:
    def __init__(self, prices: PriceBook, catalog: dict[str, ModelEntry]) -> None:
        self.prices = prices
        self.catalog = catalog
        self._limits: dict[int, _Limits] = {}  # by id(deployment): deployments live as long as the catalog
        self._reach: dict[str, list[Deployment]] = {}

    def _of(self, deployment: Deployment) -> _Limits:
        found = self._limits.get(id(deployment))
        if found is None:
            found = _Limits(
                self.prices.price_for(deployment),
                self.prices.max_output_tokens_for(deployment),
                self.prices.context_window_for(deployment),
            )
            self._limits[id(deployment)] = found
        return found

    def reachable(self, entry: ModelEntry) -> list[Deployment]:
        """The deployments of `entry` and of every fallback model it can reach."""
        found = self._reach.get(entry.name)
        if found is None:
            found, seen, todo = [], {entry.name}, [entry]
            while todo:
                current = todo.pop(0)
                found.extend(current.deployments)
                for name in [*current.fallbacks, *(current.context_window_fallbacks or [])]:
                    target = self.catalog.get(name)
                    if target is not None and name not in seen:
                        seen.add(name)
                        todo.append(target)
            self._reach[entry.name] = found
        return found

    def output_bound(self, deployment: Deployment, input_tokens: int, max_tokens: int | None) -> int | None:
        if max_tokens is not None:
            return max_tokens
        limits = self._of(deployment)
        if limits.max_output is not None:
            return limits.max_output
        if limits.window is not None:
            return max(limits.window - input_tokens, 0)
        return None

    def compute(
        self,
        entry: ModelEntry,
        chosen: Deployment,
        input_tokens: int,
        max_tokens: int | None,
        *,
        priced: bool,
        input_bound: int | None = None,
    ) -> WorstCase:
        """`input_tokens` is what `chosen` will bill (its exact count, or the bound); `input_bound` the bound
        for deployments with another tokenizer (None: `input_tokens` for all). `priced=False` skips the cost
        (no budget or cost cap applies)."""
        reachable = self.reachable(entry)

        def input_for(deployment: Deployment) -> int:
            if input_bound is None or deployment is chosen:
                return input_tokens
            if (deployment.provider, deployment.model) == (chosen.provider, chosen.model):
                return input_tokens  # the same tokenizer counted it
            return max(input_tokens, input_bound)

        most_input = max([input_tokens, *(input_for(d) for d in reachable)])
        output = self.output_bound(chosen, input_tokens, max_tokens)
        if not priced:
            return WorstCase(most_input, output, None)
        if output is None or self._of(chosen).price is None:
            return WorstCase(most_input, output, None)
        worst = 0
        for deployment in reachable:
            price = self._of(deployment).price
            n_in = input_for(deployment)
            bound = self.output_bound(deployment, n_in, max_tokens)
            if price is None or bound is None:
                continue  # its cost cannot be known even afterwards
            # rounded up: a reservation must never be smaller than the cost
            worst = max(worst, to_pico(worst_case_cost(price, n_in, bound), rounding=ROUND_CEILING))
        return WorstCase(most_input, output, worst)
