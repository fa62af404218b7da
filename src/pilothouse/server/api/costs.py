"""/api/costs: cost reports (GET /api/costs/report) and cost forecasts (POST /api/costs/estimate)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.costs.estimate import MAX_MODELS, MAX_REQUESTS, EstimateSpec, ModelSource, estimate
from pilothouse.costs.forecast import DEFAULT_OUTPUT_TOKENS
from pilothouse.costs.report import GROUP_BY, ReportScope, cost_report
from pilothouse.errors import InvalidRequest
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import audit_cross_read, resolve_projects
from pilothouse.server.state import AppState
from pilothouse.timewindow import time_param

router = APIRouter(prefix="/api/costs", tags=["costs"])

DEFAULT_SINCE = "7d"


class EstimateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list, max_length=MAX_MODELS, description="Models to price it on.")
    prompt: str | None = Field(default=None, description="NAME, NAME@VERSION, NAME@LABEL or NAME@sha:HASH.")
    variables: dict[str, Any] | None = None
    n: int = Field(default=1, ge=1, le=10**9, description="How many calls of the prompt.")
    requests: list[Any] | None = Field(default=None, max_length=MAX_REQUESTS, description="Chat bodies.")
    first_index: int = Field(default=0, ge=0, description="Index of the first body, for error messages.")
    output_tokens: int = Field(default=DEFAULT_OUTPUT_TOKENS, ge=0, le=10**7, description="Assumed without history.")


def _projects(state: AppState, principal: Principal, project: str | None) -> tuple[str, ...] | None:
    """The projects a report covers: the caller's, or (owner keys, audited) another one or all of them (None)."""
    with state.store.connect() as conn:
        project_id = resolve_projects(conn, principal, project)
    audit_cross_read(state.store, principal, "costs.report", project_id)
    return None if project_id is None else (project_id,)


@router.get("/report")
def report(
    state: StateDep,
    principal: PrincipalDep,
    by: str = "model",
    since: str = DEFAULT_SINCE,
    until: str | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    """Requests, tokens, cost, cache savings, error rate and latency per group, over [since, until).

    `since`/`until`: a duration before now (7d, 24h, 30m), epoch seconds or ISO 8601. `project`: owner keys
    may report on another project (id or name) or on `all` of them; others see their own project."""
    require_role(principal, "viewer")
    if by not in GROUP_BY:
        raise InvalidRequest(f"'by' must be one of {', '.join(GROUP_BY)}, got {by!r}", param="by")
    now = time.time()
    scope_since = time_param(since, "since", now=now)
    scope_until = time_param(until, "until", now=now)
    scope = ReportScope(_projects(state, principal, project), scope_since, scope_until)
    with state.store.connect() as conn:
        return cost_report(conn, by, scope)


@router.post("/estimate")
def estimate_costs(body: EstimateBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """What `n` calls of a prompt, or a list of chat bodies, would cost on each model, as a range."""
    require_role(principal, "viewer")
    spec = EstimateSpec(
        models=tuple(dict.fromkeys(body.models)),
        prompt=body.prompt,
        variables=body.variables,
        n=body.n,
        requests=body.requests,
        first_index=body.first_index,
        output_tokens=body.output_tokens,
    )
    gateway = state.gateway
    source = ModelSource(catalog=gateway.catalog, prices=gateway.prices, provider_for=gateway.pool.get)
    with state.store.connect() as conn:
        return estimate(conn, principal.project_id, spec, source)
