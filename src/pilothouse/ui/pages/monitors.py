"""Dashboard section 'monitors': alert rules with their series, alert history with its evidence, online
evaluation rules, input drift, and a page for any monitored metric.

- `/monitors`: the rules (state, series charts with baseline and change points), the alert list (refreshing
  itself from `/monitors/alerts`), the online evaluation rules; admins get the forms that add rules.
- `/monitors/alerts`: the alert list as a fragment (the live view's source), filterable by rule and status.
- `/monitors/rules/{name}`: one rule's chart, its alerts and, for an input-drift rule, the drift comparison now.
- `/monitors/series`: any metric of `GET /api/monitors/series` over a range, filtered by project scope (prompt,
  version, model, tag) and optionally grouped.

Everything needs the viewer role, like the API's reads; changes go through `/api/monitors` (admin).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from pilothouse.monitors.online_eval import SCORERS
from pilothouse.monitors.series import GROUPS, METRICS, Scope
from pilothouse.store.keys import role_at_least
from pilothouse.ui.context import UiDep, require_ui_role
from pilothouse.ui.pages.monitors_views import (
    MAX_RULE_CHARTS,
    RANGES,
    evidence_brief,
    format_value,
    overview,
    recent_alerts,
    rule_detail,
    seconds_label,
    series_view,
)
from pilothouse.ui.render import fragment, page

router = APIRouter(include_in_schema=False)

HELPERS: dict[str, Any] = {"fmt": format_value, "brief": evidence_brief, "span": seconds_label}
"""Functions the templates format values with."""

Range = Annotated[str, Query(max_length=10)]
Short = Annotated[str | None, Query(max_length=200)]


@router.get("/monitors", response_class=HTMLResponse)
async def monitors(ctx: UiDep, range: Range = "24h") -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    found = await asyncio.to_thread(overview, ctx.state.store, ctx.principal, range)
    return page(
        ctx,
        "monitors/index.html",
        title="Monitors and alerts",
        found=found,
        **HELPERS,
        ranges=tuple(RANGES),
        metrics=METRICS,
        scorers=SCORERS,
        max_charts=MAX_RULE_CHARTS,
        is_admin=role_at_least(ctx.principal.role, "admin"),
        alerts_url="/monitors/alerts",
    )


@router.get("/monitors/alerts", response_class=HTMLResponse)
async def alerts_fragment(
    ctx: UiDep,
    rule: Short = None,
    status: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
) -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    found = await asyncio.to_thread(recent_alerts, ctx.state.store, ctx.principal, rule=rule, status=status)
    return fragment(
        ctx,
        "monitors/_alerts.html",
        alerts=found,
        **HELPERS,
    )


@router.get("/monitors/series", response_class=HTMLResponse)
async def series(
    ctx: UiDep,
    metric: Annotated[str, Query(max_length=100)] = "error_rate",
    range: Range = "24h",
    prompt: Short = None,
    prompt_version: Annotated[int | None, Query(ge=1)] = None,
    model: Short = None,
    tag: Short = None,
    by: Annotated[Literal["prompt", "prompt_version", "model", "tag"] | None, Query()] = None,
) -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    scope = Scope(prompt or None, prompt_version, model or None, tag or None)
    found = await asyncio.to_thread(series_view, ctx.state.store, ctx.principal, metric, range, scope, by)
    return page(
        ctx,
        "monitors/series.html",
        title=f"Series: {metric}",
        found=found,
        **HELPERS,
        metrics=METRICS,
        ranges=tuple(RANGES),
        groups=GROUPS,
        selected={
            "metric": metric,
            "range": range,
            "prompt": prompt or "",
            "prompt_version": prompt_version or "",
            "model": model or "",
            "tag": tag or "",
            "by": by or "",
        },
    )


@router.get("/monitors/rules/{name}", response_class=HTMLResponse)
async def rule(ctx: UiDep, name: str, range: Range = "24h") -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    found = await asyncio.to_thread(rule_detail, ctx.state.store, ctx.principal, name, range)
    return page(
        ctx,
        "monitors/rule.html",
        title=f"Monitor rule {found.rule.name}",
        found=found,
        **HELPERS,
        ranges=tuple(RANGES),
        range=range,
        is_admin=role_at_least(ctx.principal.role, "admin"),
        alerts_url=f"/monitors/alerts?rule={found.rule.name}",
    )
