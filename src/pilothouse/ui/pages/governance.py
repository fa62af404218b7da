"""Dashboard section 'Governance' (admin and above): guard policies with their shadow-mode results, API keys,
budgets and rate limits, and the audit log with its verification.

Every page here reads through the governance API's own route functions (server/api/policies.py, keys.py,
budgets.py, audit.py, policy_shadow.py's core), so the role and project rules are the API's; the section as a
whole needs the admin role (`require_ui_role`), as the API's key, limit and audit routes do. Changes (push or
disable a policy, create or revoke a key) are forms calling those routes from the browser, audited there.
This module holds the overview and the policy pages; keys and budgets are in governance_access.py, the audit
log in governance_audit.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from pilothouse.guards.policy.shadow_results import shadow_results
from pilothouse.server.api import budgets as budgets_api
from pilothouse.server.api import keys as keys_api
from pilothouse.server.api import policies as policies_api
from pilothouse.timewindow import time_param
from pilothouse.ui.context import UiContext, UiDep, require_ui_role
from pilothouse.ui.pages import governance_access, governance_audit
from pilothouse.ui.render import page

router = APIRouter(include_in_schema=False)
# The other governance pages' routes, as this section's own: one flat router (no prefix or dependencies to
# apply), so whoever lists the section's routes (the page benchmark) sees them all.
router.routes.extend([*governance_access.router.routes, *governance_audit.router.routes])

SHADOW_RANGES = ("24h", "7d", "30d")


@router.get("/governance")
async def overview(ctx: UiDep) -> HTMLResponse:
    """What is in force: policies, keys, budgets, limits, with a link to each page."""
    require_ui_role(ctx, "admin")
    policies = await policies_api.list_policies(ctx.state, ctx.principal)
    keys = (await asyncio.to_thread(keys_api.list_api_keys, ctx.state, ctx.principal, False, None))["data"]
    limits = (await budgets_api.list_limits(ctx.state, ctx.principal, None))["data"]
    budgets, budgets_error = await governance_access.read_budgets(ctx)
    return page(
        ctx,
        "governance/overview.html",
        title="Governance",
        policies=policies,
        shadow=sum(1 for p in policies if p.mode == "shadow" and p.enabled),
        keys=keys,
        budgets=budgets,
        budgets_error=budgets_error,
        exceeded=sum(1 for b in budgets if b["exceeded"]),
        limits=limits,
    )


@router.get("/governance/policies")
async def policies_page(
    ctx: UiDep, since: Annotated[str, Query(alias="range", max_length=16, description="24h, 7d or 30d")] = "7d"
) -> HTMLResponse:
    """Guard policies with their versions, and what the shadow-mode rules would have done."""
    require_ui_role(ctx, "admin")
    start = time_param(since, "since", now=time.time())
    policies = await policies_api.list_policies(ctx.state, ctx.principal)
    report = await asyncio.to_thread(_shadow, ctx, start)
    return page(
        ctx,
        "governance/policies.html",
        title="Guard policies",
        policies=policies,
        report=report,
        hits=report.hits_by_policy(),
        since=since,
        ranges=SHADOW_RANGES,
    )


def _shadow(ctx: UiContext, start: float) -> Any:
    with ctx.state.store.connect() as conn:
        return shadow_results(conn, ctx.principal.project_id, since=start)


@router.get("/governance/policies/{name}")
async def policy_page(
    ctx: UiDep,
    name: Annotated[str, Path(min_length=1, max_length=200)],
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """One policy: the version shown (default the latest) as validated and as pushed, every version, and its
    shadow hits over the last 7 days."""
    require_ui_role(ctx, "admin")
    detail = await policies_api.show_policy(name, ctx.state, ctx.principal, version)
    versions = await policies_api.policy_versions(name, ctx.state, ctx.principal)
    report = await asyncio.to_thread(_shadow_of, ctx, name)
    return page(ctx, "governance/policy.html", title=f"Policy {name}", policy=detail, versions=versions, report=report)


def _shadow_of(ctx: UiContext, name: str) -> Any:
    with ctx.state.store.connect() as conn:
        return shadow_results(conn, ctx.principal.project_id, since=time.time() - 7 * 86_400, policy=name)
