"""/api/costs: cost reports (GET /api/costs/report) and cost forecasts (POST /api/costs/estimate)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from pilothouse.costs.estimate import MAX_MODELS, MAX_REQUESTS, EstimateSpec, ModelSource, estimate
from pilothouse.costs.forecast import DEFAULT_OUTPUT_TOKENS
from pilothouse.costs.report import GROUP_BY, ReportScope, cost_report
from pilothouse.costs.window import parse_when
from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.gateway.pipeline import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.store.projects import get_project

router = APIRouter(prefix="/api/costs", tags=["costs"])

DEFAULT_SINCE = "7d"
ALL_PROJECTS = "all"


class EstimateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list, max_length=MAX_MODELS, description="Models to price it on.")
    prompt: str | None = Field(default=None, description="NAME, NAME@VERSION, NAME@LABEL or NAME@sha:HASH.")
    variables: dict[str, Any] | None = None
    n: int = Field(default=1, ge=1, le=10**9, description="How many calls of the prompt.")
    requests: list[Any] | None = Field(default=None, max_length=MAX_REQUESTS, description="Chat bodies.")
    first_index: int = Field(default=0, ge=0, description="Index of the first body, for error messages.")
    output_tokens: int = Field(default=DEFAULT_OUTPUT_TOKENS, ge=0, le=10**7, description="Assumed without history.")


def _when(value: str, name: str, now: float) -> float:
    try:
        return parse_when(value, now=now)
    except ValueError as exc:
        raise InvalidRequest(f"'{name}': {exc}", param=name) from None


def _projects(conn: Connection, principal: Principal, project: str | None) -> tuple[str, ...] | None:
    """The projects a report covers: the caller's, or (admin keys) another one, or all of them (None)."""
    if project is None:
        return (principal.project_id,)
    if project == ALL_PROJECTS:
        require_role(principal, "admin")
        return None
    found = get_project(conn, project)
    if found is not None and found.id == principal.project_id:
        return (found.id,)
    require_role(principal, "admin")
    if found is None:
        raise NotFound(
            f"project {project!r} does not exist (list them with `pilothouse projects list`)", param="project"
        )
    return (found.id,)


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

    `since`/`until`: a duration before now (7d, 24h, 30m), epoch seconds or ISO 8601. `project`: admin keys
    may report on another project (id or name) or on `all` of them; others see their own project."""
    if by not in GROUP_BY:
        raise InvalidRequest(f"'by' must be one of {', '.join(GROUP_BY)}, got {by!r}", param="by")
    now = time.time()
    scope_since = _when(since, "since", now)
    scope_until = None if until is None else _when(until, "until", now)
    with state.store.connect() as conn:
        scope = ReportScope(_projects(conn, principal, project), scope_since, scope_until)
        return cost_report(conn, by, scope)


@router.post("/estimate")
def estimate_costs(body: EstimateBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """What `n` calls of a prompt, or a list of chat bodies, would cost on each model, as a range."""
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
