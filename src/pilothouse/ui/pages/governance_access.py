"""Governance pages for who may spend what: API keys (create, revoke) and budgets with their forecast, and
rate limits. Read through the API's route functions (server/api/keys.py, budgets.py); admin and above.

A budget's forecast is its spend so far this period extrapolated linearly to the period's end (the spend rate
since the period started, times the whole period); a `total` budget has no end, so no forecast.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pilothouse.errors import ApiError
from pilothouse.server.api import budgets as budgets_api
from pilothouse.server.api import keys as keys_api
from pilothouse.store.keys import ROLES, role_at_least
from pilothouse.ui.context import UiContext, UiDep, require_ui_role
from pilothouse.ui.render import page

router = APIRouter(include_in_schema=False)


@router.get("/governance/keys")
async def keys_page(ctx: UiDep) -> HTMLResponse:
    """The project's keys (never their secrets), a form to create one (its secret shown once) and revoke."""
    require_ui_role(ctx, "admin")
    listed = await asyncio.to_thread(keys_api.list_api_keys, ctx.state, ctx.principal, True, None)
    keys = listed["data"]
    for key in keys:  # the API refuses these; the page does not offer them
        key["revocable"] = (
            key["active"] and key["id"] != ctx.principal.key_id and role_at_least(ctx.principal.role, key["role"])
        )
    roles = [r for r in ROLES if role_at_least(ctx.principal.role, r)]
    return page(ctx, "governance/keys.html", title="API keys", keys=keys, roles=roles)


@router.get("/governance/budgets")
async def budgets_page(ctx: UiDep) -> HTMLResponse:
    """Budgets with their spend this period and a forecast to its end; rate limits and max_tokens caps."""
    require_ui_role(ctx, "admin")
    budgets, budgets_error = await read_budgets(ctx)
    limits = (await budgets_api.list_limits(ctx.state, ctx.principal, None))["data"]
    return page(
        ctx, "governance/budgets.html", title="Budgets and limits", budgets=budgets, error=budgets_error, limits=limits
    )


async def read_budgets(ctx: UiContext) -> tuple[list[dict[str, Any]], str | None]:
    """The budgets with spend and forecast; with the reason instead when the spend cannot be read (the limit
    store is unreachable: the API's 503), so the rest of a page still shows."""
    try:
        rows = (await budgets_api.list_budgets(ctx.state, ctx.principal, None))["data"]
    except ApiError as exc:
        if exc.status != 503:
            raise
        return [], exc.message
    now = time.time()
    return [{**row, **forecast(row, now)} for row in rows], None


def forecast(row: dict[str, Any], now: float) -> dict[str, Any]:
    """`forecast_usd` (the spend at the period's end at the rate so far, None for a `total` budget or before
    any time has passed), `forecast_share` (of the limit) and `spent_share`."""
    spent, limit = Decimal(str(row["spent_usd"])), Decimal(str(row["limit_usd"]))
    start, end = float(row["period_start"]), row["resets_at"]
    out: dict[str, Any] = {
        "spent_share": float(spent / limit) if limit > 0 else None,
        "forecast_usd": None,
        "forecast_share": None,
    }
    elapsed = now - start
    if end is None or elapsed <= 0:
        return out
    projected = spent * Decimal(str((float(end) - start) / elapsed))
    out["forecast_usd"] = projected.quantize(Decimal("0.000001"))
    out["forecast_share"] = float(projected / limit) if limit > 0 else None
    return out
