"""`cost estimate`: forecasts for N calls of a registered prompt, or for a list of chat request bodies, on
one or more models (see `costs/forecast.py` for how one model's range is computed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.config import Deployment, ModelEntry
from pilothouse.costs.forecast import DEFAULT_OUTPUT_TOKENS, forecast, output_model
from pilothouse.costs.history import output_token_history
from pilothouse.costs.models import model_costing
from pilothouse.costs.plan import PlannedRequest, plan_bodies, plan_prompt
from pilothouse.errors import InvalidRequest
from pilothouse.gateway.pricing import PriceBook
from pilothouse.gateway.providers.base import Provider

MAX_MODELS = 20
MAX_REQUESTS = 2_000
"""Request bodies per call; the SDK sends a larger file in parts and merges the answers (`costs/merge.py`)."""

Named = list[tuple[str, PlannedRequest]]


@dataclass(frozen=True, slots=True)
class EstimateSpec:
    """What to forecast: `n` calls of `prompt` (with `variables`), or `requests` (chat bodies), on `models`.

    Without models, a prompt is estimated on the model of its configuration and each request body on its
    own model. `output_tokens` is the answer length assumed where there is no history."""

    models: tuple[str, ...] = ()
    prompt: str | None = None
    variables: dict[str, Any] | None = None
    n: int = 1
    requests: list[Any] | None = None
    first_index: int = 0
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    def check(self) -> None:
        if (self.prompt is None) == (self.requests is None):
            raise InvalidRequest("give either 'prompt' (with 'n' and 'variables') or 'requests', not both or neither")
        if self.requests is not None and self.n != 1:
            raise InvalidRequest("'n' applies to a prompt; with 'requests' each body is one request", param="n")
        if self.requests is not None and not self.requests:
            raise InvalidRequest("'requests' is empty", param="requests")
        if self.requests is not None and len(self.requests) > MAX_REQUESTS:
            raise InvalidRequest(
                f"'requests' has {len(self.requests)} bodies; at most {MAX_REQUESTS} per call (send parts)",
                param="requests",
            )
        if len(self.models) > MAX_MODELS:
            raise InvalidRequest(f"at most {MAX_MODELS} models per estimate", param="models")
        if self.n < 1 or self.output_tokens < 0:
            raise InvalidRequest("'n' must be at least 1 and 'output_tokens' not negative")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """What the server knows about models: its catalog, the prices, and its provider instances."""

    catalog: Mapping[str, ModelEntry]
    prices: PriceBook
    provider_for: Callable[[Deployment], Provider]


def _prompt_groups(
    conn: Connection, project_id: str, spec: EstimateSpec
) -> tuple[dict[str, Named], str | None, dict[str, Any]]:
    assert spec.prompt is not None
    plan = plan_prompt(conn, project_id, spec.prompt, spec.variables, spec.n)
    models = spec.models or ((plan.model,) if plan.model else ())
    if not models:
        raise InvalidRequest(
            f"prompt {plan.name}@{plan.version} has no model in its configuration: name the models to estimate",
            param="models",
        )
    where = f"prompt {plan.name}@{plan.version}"
    groups = {model: [(where, plan.request)] for model in models}
    return groups, plan.name, {"name": plan.name, "version": plan.version}


def _request_groups(spec: EstimateSpec) -> dict[str, Named]:
    assert spec.requests is not None
    planned = plan_bodies(spec.requests, first_index=spec.first_index)
    named = [(f"requests[{i}]", request) for i, (_, request) in enumerate(planned, start=spec.first_index)]
    if spec.models:
        return {model: named for model in spec.models}
    groups: dict[str, Named] = {}
    for (model, _), item in zip(planned, named, strict=True):
        if model is None:
            raise InvalidRequest(f"{item[0]} names no model: name the models to estimate", param="models")
        groups.setdefault(model, []).append(item)
    return groups


def estimate(conn: Connection, project_id: str, spec: EstimateSpec, source: ModelSource) -> dict[str, Any]:
    """One forecast per model. Output-token history is read from `project_id`'s traces."""
    spec.check()
    if spec.prompt is not None:
        groups, prompt_name, prompt = _prompt_groups(conn, project_id, spec)
    else:
        groups, prompt_name, prompt = _request_groups(spec), None, None
    estimates = []
    for model, requests in groups.items():
        costing = model_costing(model, catalog=source.catalog, prices=source.prices, provider_for=source.provider_for)
        history = output_token_history(conn, project_id, model, prompt_name=prompt_name)
        described = f"calls of prompt {prompt_name} on {model}" if prompt_name else f"calls of {model}"
        estimates.append(
            forecast(costing, requests, output_model(history, default=spec.output_tokens, described=described))
        )
    return {
        "requests": spec.n if spec.prompt is not None else len(spec.requests or ()),
        "prompt": prompt,
        "price_catalog_version": source.prices.version,
        "estimates": estimates,
    }
