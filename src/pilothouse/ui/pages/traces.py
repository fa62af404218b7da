"""Dashboard Traces: the searchable, filterable, sortable list (`/traces`), the live tail (`/traces/tail`, its
rows refreshed from `/traces/tail/rows`) and one trace (`/traces/{id}`, built in `traces_detail.py`).

The list calls the same function as `GET /api/traces` (its filters, validation, cursor and sort orders); the
page only turns the query string into that function's typed arguments, so a bad value is the API's 400 shown
as an HTML error page.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pilothouse.errors import InvalidRequest
from pilothouse.server.api.traces import list_all
from pilothouse.ui.context import UiContext, UiDep
from pilothouse.ui.pages.traces_detail import trace_view
from pilothouse.ui.render import fragment, page

router = APIRouter(include_in_schema=False)

RANGES: dict[str, float | None] = {"1h": 3600.0, "24h": 86_400.0, "7d": 7 * 86_400.0, "30d": 30 * 86_400.0, "all": None}
"""The list's time ranges (start time within the last ...); `since`/`until` in the query override them."""
ORDERS = {"newest": "Newest first", "cost": "Costliest first", "latency": "Slowest first"}
STATUSES = ("ok", "error", "unknown_outcome")
TEXT_FILTERS = ("model", "user", "session", "prompt", "tag", "score", "q", "since", "until", "source")
TAIL_ROWS = 50
PAGE_ROWS = 50


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The list page's query string, parsed: what to pass to the API's list function, and what to show."""

    params: dict[str, Any]
    form: dict[str, str]
    range: str
    order: str


def _number(raw: str, name: str, kind: type[int] | type[float] | type[Decimal]) -> Any:
    try:
        value = kind(raw)
    except (ValueError, InvalidOperation):
        raise InvalidRequest(f"{name} must be a number, got {raw!r}", param=name) from None
    if not math.isfinite(value) or value < 0:
        raise InvalidRequest(f"{name} must be a finite number of at least 0, got {raw!r}", param=name)
    return value


def parse_list_query(query: Mapping[str, str], now: float) -> ListQuery:
    """The API's arguments from the page's query string (empty fields are left out)."""
    form = {k: v.strip() for k, v in query.items() if v.strip()}
    chosen = form.get("range", "24h" if "since" not in form else "all")
    if chosen not in RANGES:
        raise InvalidRequest(f"range must be one of {', '.join(RANGES)}, got {chosen!r}", param="range")
    order = form.get("order", "newest")
    if order not in ORDERS:
        raise InvalidRequest(f"order must be one of {', '.join(ORDERS)}, got {order!r}", param="order")
    status = form.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, got {status!r}", param="status")
    params: dict[str, Any] = {name: form.get(name) for name in TEXT_FILTERS}
    window = RANGES[chosen]
    if params["since"] is None and window is not None:
        params["since"] = repr(now - window)
    version = form.get("prompt_version")
    params["prompt_version"] = None if version is None else _number(version, "prompt_version", int)
    if params["prompt_version"] == 0:
        raise InvalidRequest("prompt_version must be 1 or more", param="prompt_version")
    for name in ("cost_min", "cost_max"):
        params[name] = None if name not in form else _number(form[name], name, Decimal)
    for name in ("latency_min_ms", "latency_max_ms"):
        params[name] = None if name not in form else _number(form[name], name, float)
    limit = _number(form.get("limit", str(PAGE_ROWS)), "limit", int)
    if not 1 <= limit <= 500:
        raise InvalidRequest("limit must be between 1 and 500", param="limit")
    params.update(status=status, limit=limit, cursor=form.get("cursor"), order=order)
    return ListQuery(params, form, chosen, order)


def read_list(ctx: UiContext, params: dict[str, Any]) -> dict[str, Any]:
    """A page of traces through the API's own list function (same filters, checks, cursor and order)."""
    return list_all(ctx.state, ctx.principal, **params)


def _next_url(form: dict[str, str], cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return "/traces?" + urlencode({**{k: v for k, v in form.items() if k != "cursor"}, "cursor": cursor})


@router.get("/traces")
async def traces_list(ctx: UiDep) -> HTMLResponse:
    parsed = parse_list_query(dict(ctx.request.query_params), time.time())
    found = await asyncio.to_thread(read_list, ctx, parsed.params)
    first = "/traces?" + urlencode({k: v for k, v in parsed.form.items() if k != "cursor"})
    return page(
        ctx,
        "traces/list.html",
        title="Traces",
        traces=found["data"],
        form=parsed.form,
        range=parsed.range,
        ranges=list(RANGES),
        order=parsed.order,
        orders=ORDERS,
        statuses=STATUSES,
        next_url=_next_url(parsed.form, found["next_cursor"]),
        first_url=first if "cursor" in parsed.form else None,
    )


def _newest(ctx: UiContext) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = read_list(ctx, parse_list_query({"range": "all", "limit": str(TAIL_ROWS)}, 0).params)[
        "data"
    ]
    return rows


@router.get("/traces/tail")
async def traces_tail(ctx: UiDep) -> HTMLResponse:
    rows = await asyncio.to_thread(_newest, ctx)
    return page(ctx, "traces/tail.html", title="Live tail", traces=rows, refreshed=time.time())


@router.get("/traces/tail/rows")
async def traces_tail_rows(ctx: UiDep) -> HTMLResponse:
    rows = await asyncio.to_thread(_newest, ctx)
    return fragment(ctx, "traces/_tail_rows.html", traces=rows, refreshed=time.time())


@router.get("/traces/{trace_id}")
async def trace_page(trace_id: str, ctx: UiDep) -> HTMLResponse:
    view = await asyncio.to_thread(trace_view, ctx, trace_id, dict(ctx.request.query_params))
    return page(ctx, "traces/trace.html", title=f"Trace {trace_id}", **view)
