"""/api/budgets and /api/limits: budgets, rate limits and max_tokens caps (admin role to change them).

Every change is an audit event and takes effect on this replica at once (others within
`limits.definitions_ttl_s`). A new budget starts with what its subject already spent this period.
Admins set, list and delete those of their own project; owners those of any project (server/scope.py).
Spend lives in the limit store: while Redis cannot be reached, the routes that read it answer 503 with the
reason (the definitions themselves are in the database and can still be changed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, InvalidRequest, NotFound
from pilothouse.gateway.admission import LimitsUnavailable
from pilothouse.gateway.limits.budgets import budget_status, seed_budget
from pilothouse.gateway.limits.store import LimitStoreUnavailable
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import audit_cross_read, audit_details, reaches, resolve_project, resolve_projects
from pilothouse.server.state import AppState
from pilothouse.store import budgets as repo
from pilothouse.store.keys import get_key

router = APIRouter(prefix="/api", tags=["limits"])


class BudgetSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["key", "project", "user", "prompt"]
    subject: str = Field(min_length=1, max_length=200, description="Key id, project id or name, user, prompt name.")
    usd: Decimal = Field(ge=0, le=Decimal(9_000_000), description="The limit in USD per period.")
    period: Literal["day", "month", "total"] = "month"
    mode: Literal["hard", "soft"] = "hard"
    project: str | None = Field(
        default=None,
        description="For user and prompt budgets: the project they are in (default: the caller's; "
        "another project: owner keys only). Key and project budgets are in their subject's project.",
    )


MAX_LIMIT = 2**31 - 1
"""The largest rpm, tpm or max_tokens (32-bit INTEGER columns): a larger one is a 422, not a database error."""


class LimitSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["key", "project", "model"]
    subject: str = Field(min_length=1, max_length=200, description="Key id, project id or name, model name.")
    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Requests per minute (sliding window).")
    tpm: int | None = Field(
        default=None, ge=1, le=MAX_LIMIT, description="Tokens per minute: input + max_tokens, then actual."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=MAX_LIMIT, description="Largest max_tokens a request may ask for."
    )
    project: str | None = Field(
        default=None,
        description="For model limits: the project they apply in (default: the caller's; another project: "
        "owner keys only). Key and project limits are in their subject's project.",
    )


def _resolve(conn: Connection, principal: Principal, scope: str, subject: str, project: str | None) -> tuple[str, str]:
    """(project id the definition belongs to, normalised subject), within what the principal may reach.

    Users, prompts and models are named within a project: `project` (owner keys: any) or the caller's. A key
    or a project subject decides the project itself; a `project` given with it must name the same one."""
    if scope == "key":
        key = get_key(conn, subject)
        if key is None or not reaches(principal, key.project_id):
            raise NotFound(f"no API key {subject!r} (list them with `pilothouse keys list`)", param="subject")
        project_id, subject = key.project_id, key.id
    elif scope == "project":
        project_id = subject = resolve_project(conn, principal, subject, param="subject")
    else:
        return resolve_project(conn, principal, project), subject
    if project is not None and resolve_project(conn, principal, project) != project_id:
        raise InvalidRequest(
            f"'project' names another project than the {scope} subject's; leave it out", param="project"
        )
    return project_id, subject


async def _reload(state: AppState) -> None:
    await asyncio.to_thread(state.admission.definitions.reload)


@contextmanager
def _spend(what: str) -> Iterator[None]:
    """Reading the spend from an unreachable Redis: 503 naming it and why, instead of a 500."""
    try:
        yield
    except LimitStoreUnavailable as exc:
        raise LimitsUnavailable(str(exc), what=what) from exc


@router.post("/budgets")
async def set_budget(body: BudgetSet, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create or change the budget of (scope, subject, period)."""
    require_role(principal, "admin")

    def write() -> tuple[repo.Budget, bool]:
        with state.store.begin() as conn:
            project_id, subject = _resolve(conn, principal, body.scope, body.subject, body.project)
            budget, created = repo.set_budget(
                conn,
                project_id=project_id,
                scope=body.scope,
                subject=subject,
                period=body.period,
                limit_usd=body.usd,
                mode=body.mode,
                actor=principal.key_id,
            )
            append_event(
                conn,
                actor=principal.key_id,
                action="budget.set",
                target=budget.id,
                project_id=project_id,
                details=audit_details(
                    principal,
                    project_id,
                    {
                        "scope": budget.scope,
                        "subject": budget.subject,
                        "period": budget.period,
                        "limit_usd": str(budget.limit_usd),
                        "mode": budget.mode,
                        "created": created,
                    },
                ),
            )
        return budget, created

    try:
        budget, created = await asyncio.to_thread(write)
    except IntegrityError as exc:  # set concurrently by another call: the caller may simply retry
        raise Conflict("this budget was changed concurrently; retry") from exc
    admission = state.admission
    # Saved either way: a budget Redis did not take now is seeded from the traces before its first admission.
    # Seeded before it is loaded, so this replica admits nothing against it unseeded; the seed counts once.
    with _spend(f"budget {budget.id} was saved, but its spend cannot be read right now"):
        try:
            if created:
                await seed_budget(admission.store, state.store, admission.prefix, budget, time.time())
        finally:
            await _reload(state)
        [row] = await budget_status(admission.store, admission.prefix, [budget], time.time(), store=state.store)
    return {**row, "created": created}


async def _projects(state: AppState, principal: Principal, project: str | None, action: str) -> str | None:
    """The project a list covers (None: all), after auditing an owner's look into other projects."""

    def resolve() -> str | None:
        with state.store.connect() as conn:
            project_id = resolve_projects(conn, principal, project)
        audit_cross_read(state.store, principal, action, project_id)
        return project_id

    return await asyncio.to_thread(resolve)


@router.get("/budgets")
async def list_budgets(state: StateDep, principal: PrincipalDep, project: str | None = None) -> dict[str, Any]:
    """Budgets of the caller's project with their spend this period, what remains and when they reset.
    `project`: owner keys may name another project (id or name) or `all`."""
    require_role(principal, "viewer")
    project_id = await _projects(state, principal, project, "budgets.list")

    def read() -> list[repo.Budget]:
        with state.store.connect() as conn:
            return repo.list_budgets(conn, project_id=project_id)

    budgets = await asyncio.to_thread(read)
    admission = state.admission
    with _spend("budget spend cannot be read right now"):
        rows = await budget_status(admission.store, admission.prefix, budgets, time.time(), store=state.store)
    return {"data": rows}


@router.delete("/budgets/{budget_id}")
async def delete_budget(budget_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")

    def remove() -> repo.Budget:
        with state.store.begin() as conn:
            budget = repo.get_budget(conn, budget_id)
            if budget is None or not reaches(principal, budget.project_id) or not repo.delete_budget(conn, budget_id):
                raise NotFound(f"no budget {budget_id!r} (list them with `pilothouse budgets list`)")
            append_event(
                conn,
                actor=principal.key_id,
                action="budget.delete",
                target=budget_id,
                project_id=budget.project_id,
                details=audit_details(
                    principal,
                    budget.project_id,
                    {"scope": budget.scope, "subject": budget.subject, "period": budget.period},
                ),
            )
        return budget

    budget = await asyncio.to_thread(remove)
    await _reload(state)
    return {**budget.to_dict(), "deleted": True}


@router.post("/limits")
async def set_limits(body: LimitSet, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Set the rate limits and max_tokens cap of (scope, subject). A field left out keeps its current value;
    `null` removes that limit (removing every one is refused: DELETE the limits instead)."""
    require_role(principal, "admin")
    fields = ("rpm", "tpm", "max_tokens")
    if not body.model_fields_set & set(fields):
        raise InvalidRequest("give at least one of rpm, tpm, max_tokens", param="rpm")
    if body.scope == "model" and body.subject not in state.gateway.catalog:
        raise NotFound(f"no model {body.subject!r} (list them with `pilothouse models list`)", param="subject")

    def write() -> tuple[repo.RateLimit, bool]:
        with state.store.begin() as conn:
            project_id, subject = _resolve(conn, principal, body.scope, body.subject, body.project)
            listed = repo.list_rate_limits(conn, project_id=project_id)
            current = next((x for x in listed if (x.scope, x.subject) == (body.scope, subject)), None)
            merged = {f: getattr(body if f in body.model_fields_set or current is None else current, f) for f in fields}
            if all(v is None for v in merged.values()):
                raise InvalidRequest(
                    "this would remove every limit of the subject; delete them instead (DELETE /api/limits/{id})",
                    param="rpm",
                )
            limit, created = repo.set_rate_limit(
                conn,
                project_id=project_id,
                scope=body.scope,
                subject=subject,
                **merged,
                actor=principal.key_id,
            )
            append_event(
                conn,
                actor=principal.key_id,
                action="limits.set",
                target=limit.id,
                project_id=project_id,
                details=audit_details(
                    principal,
                    project_id,
                    {
                        "scope": limit.scope,
                        "subject": limit.subject,
                        "rpm": limit.rpm,
                        "tpm": limit.tpm,
                        "max_tokens": limit.max_tokens,
                        "created": created,
                    },
                ),
            )
        return limit, created

    try:
        limit, created = await asyncio.to_thread(write)
    except IntegrityError as exc:
        raise Conflict("these limits were changed concurrently; retry") from exc
    await _reload(state)
    return {**limit.to_dict(), "created": created}


@router.get("/limits")
async def list_limits(state: StateDep, principal: PrincipalDep, project: str | None = None) -> dict[str, Any]:
    """Rate limits and caps of the caller's project; owner keys may name another `project` or `all`."""
    require_role(principal, "viewer")
    project_id = await _projects(state, principal, project, "limits.list")

    def read() -> list[repo.RateLimit]:
        with state.store.connect() as conn:
            return repo.list_rate_limits(conn, project_id=project_id)

    return {"data": [lim.to_dict() for lim in await asyncio.to_thread(read)]}


@router.delete("/limits/{limit_id}")
async def delete_limits(limit_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")

    def remove() -> repo.RateLimit:
        with state.store.begin() as conn:
            limit = repo.get_rate_limit(conn, limit_id)
            if limit is None or not reaches(principal, limit.project_id) or not repo.delete_rate_limit(conn, limit_id):
                raise NotFound(f"no limits {limit_id!r} (list them with `pilothouse limits list`)")
            append_event(
                conn,
                actor=principal.key_id,
                action="limits.delete",
                target=limit_id,
                project_id=limit.project_id,
                details=audit_details(principal, limit.project_id, {"scope": limit.scope, "subject": limit.subject}),
            )
        return limit

    limit = await asyncio.to_thread(remove)
    await _reload(state)
    return {**limit.to_dict(), "deleted": True}
