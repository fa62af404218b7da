"""Dashboard Overview (`/`): requests, cost, tokens, cache savings, error rate, latency and guard blocks over a
time range, as stat cards and charts, filtered by project (owner keys), model, prompt, key and end user.

Everything is read from the trace rollups (`store.rollup_reads.grouped_counters`, what the cost report reads
for large windows), never from the trace rows: one query grouped by period, model, prompt and key, folded here
into the totals, the series and the filter choices. Latency percentiles are the rollups' histogram estimates.
With an end user set, the totals and series come from the per-user rollups instead (`store.user_rollups`: whole
days and hours, the same counters and histogram bounds), and the partial hours at the range's edges from that
user's trace rows (`store.user_activity`); their cache hits and guard blocks there are read from the spans unless
the edges alone hold more than `SPAN_READ_MAX` of the user's requests (then shown as unknown).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pilothouse.errors import InvalidRequest
from pilothouse.server.auth import is_owner
from pilothouse.server.scope import audit_cross_read, resolve_projects
from pilothouse.store.rollup_reads import GroupKey, grouped_counters, open_end
from pilothouse.store.rollups import Counters
from pilothouse.store.user_activity import SPAN_READ_MAX
from pilothouse.store.user_rollups import summarise_user
from pilothouse.ui.charts import Chart, Series, line_chart
from pilothouse.ui.context import UiContext, UiDep
from pilothouse.ui.render import page

router = APIRouter(include_in_schema=False)

RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 3600),
    "24h": (86_400, 3600),
    "7d": (7 * 86_400, 6 * 3600),
    "30d": (30 * 86_400, 86_400),
}
"""Range name -> (window seconds, chart period seconds: the rollups fold whole hours)."""
DEFAULT_RANGE = "24h"
MAX_CHOICES = 200
"""Filter choices listed at most per dimension (the most used first)."""
MAX_USER_CHARS = 200
"""The longest end-user id a trace stores (`traces.user_id`)."""


@dataclass(frozen=True, slots=True)
class OverviewFilter:
    """What the page shows: a range, optionally another project (owners), a model, a prompt, a key, an end user."""

    range: str = DEFAULT_RANGE
    project: str | None = None
    model: str | None = None
    prompt: str | None = None
    key: str | None = None
    user: str | None = None

    def matches(self, model: Any, prompt: Any, key: Any) -> bool:
        wanted = ((self.model, model), (self.prompt, prompt), (self.key, key))
        return all(want is None or want == have for want, have in wanted)


@dataclass(slots=True)
class Overview:
    """The page's numbers: totals, one Counters per period, and the values seen per filter dimension."""

    total: Counters = field(default_factory=Counters)
    periods: dict[float, Counters] = field(default_factory=dict)
    choices: dict[str, dict[str, int]] = field(default_factory=lambda: {"model": {}, "prompt": {}, "key": {}})
    spans_counted: bool = True
    """False when cache hits and guard blocks were not counted (a busy end user's window): shown as unknown."""
    since: float = 0.0
    until: float = 0.0
    period_s: int = 3600


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _user(value: str | None) -> str | None:
    user = _clean(value)
    if user is not None and len(user) > MAX_USER_CHARS:
        raise InvalidRequest(f"user must be at most {MAX_USER_CHARS} characters", param="user")
    return user


def parse_filter(query: Mapping[str, str]) -> OverviewFilter:
    """The filter from the page's query string; an unknown range is a 400 (an HTML error page)."""
    chosen = query.get("range") or DEFAULT_RANGE
    if chosen not in RANGES:
        raise InvalidRequest(f"range must be one of {', '.join(RANGES)}, got {chosen!r}", param="range")
    return OverviewFilter(
        range=chosen,
        project=_clean(query.get("project")),
        model=_clean(query.get("model")),
        prompt=_clean(query.get("prompt")),
        key=_clean(query.get("key")),
        user=_user(query.get("user")),
    )


def _count(choices: dict[str, int], value: Any, requests: int) -> None:
    if value is not None:
        choices[str(value)] = choices.get(str(value), 0) + requests


def read_overview(ctx: UiContext, flt: OverviewFilter, now: float) -> Overview:
    """The rollup counters of the filter's window, folded into totals, periods and filter choices."""
    state, principal = ctx.state, ctx.principal
    window_s, period_s = RANGES[flt.range]
    with state.store.connect() as conn:
        project_id = resolve_projects(conn, principal, flt.project)
    audit_cross_read(state.store, principal, "dashboard.overview", project_id)
    projects = None if project_id is None else (project_id,)
    since = math.floor((now - window_s) / 60) * 60.0  # whole minutes: the edges come from minute rows
    with state.store.connect() as conn:
        until = open_end(conn, projects)
        found: dict[GroupKey, Counters] = grouped_counters(
            conn, projects, since, until, by=("model", "prompt", "key"), period_s=period_s
        )
    out = Overview(since=since, until=min(until, now), period_s=period_s)
    for (period, model, prompt, key), counters in found.items():
        requests = int(counters.values["requests"])
        _count(out.choices["model"], model, requests)
        _count(out.choices["prompt"], prompt, requests)
        _count(out.choices["key"], key, requests)
        if not flt.matches(model, prompt, key):
            continue
        out.total.add(counters.values)
        out.periods.setdefault(since if period is None else float(period), Counters()).add(counters.values)
    if flt.user is not None:
        _use_user_counters(ctx, flt, out, projects, until)
    return out


def _use_user_counters(ctx: UiContext, flt: OverviewFilter, out: Overview, projects: Any, until: float) -> None:
    """Replace the totals and periods with the end user's own (with the other filters): the user rollups, and the
    user's trace rows for the partial hours at the edges."""
    with ctx.state.store.connect() as conn:
        found = summarise_user(
            conn,
            projects,
            flt.user or "",
            out.since,
            until,
            period_s=out.period_s,
            model=flt.model,
            prompt_name=flt.prompt,
            api_key_id=flt.key,
        )
    out.total, out.spans_counted = found.total(), found.spans_counted
    out.periods = {float(period): counters for period, counters in found.periods.items() if period is not None}


def _choices(seen: dict[str, int], selected: str | None) -> list[str]:
    ranked = sorted(seen, key=lambda v: (-seen[v], v))[:MAX_CHOICES]
    if selected is not None and selected not in ranked:
        ranked.append(selected)
    return ranked


def _points(view: Overview, value: Any) -> list[tuple[float, float | None]]:
    """One point per period of the window (a period without traffic is a zero, not a gap)."""
    first = math.floor(view.since / view.period_s) * view.period_s
    starts = [float(first + i * view.period_s) for i in range(int((view.until - first) // view.period_s) + 1)]
    empty = Counters()
    return [(t, value(view.periods.get(t, empty))) for t in starts]


def _money(c: Counters) -> float:
    return int(c.values["cost_pico"]) / 1e12


def _rate(c: Counters) -> float | None:
    return c.values["errors"] / c.values["requests"] if c.values["requests"] else None


def charts(view: Overview) -> list[Chart]:
    """The page's line charts: traffic, cost, latency, tokens, guard blocks and cache hits (gaps when unknown)."""
    known = view.spans_counted
    return [
        line_chart(
            "Requests and errors",
            [
                Series("requests", _points(view, lambda c: float(c.values["requests"]))),
                Series("errors", _points(view, lambda c: float(c.values["errors"]))),
            ],
        ),
        line_chart("Cost", [Series("cost (USD)", _points(view, _money))], unit="$"),
        line_chart(
            "Latency",
            [
                Series("p50", _points(view, lambda c: c.latency_percentile(50))),
                Series("p95", _points(view, lambda c: c.latency_percentile(95))),
            ],
            unit=" ms",
        ),
        line_chart(
            "Tokens",
            [
                Series("input", _points(view, lambda c: float(c.values["input_tokens"]))),
                Series("output", _points(view, lambda c: float(c.values["output_tokens"]))),
            ],
        ),
        line_chart("Error rate", [Series("error rate", _points(view, _rate))], unit="%"),
        line_chart(
            "Guard blocks and cache hits",
            [
                Series("guard blocks", _points(view, lambda c: float(c.values["guard_blocks"]) if known else None)),
                Series("cache hits", _points(view, lambda c: float(c.values["cache_hits"]) if known else None)),
            ],
        ),
    ]


@router.get("/")
async def overview(ctx: UiDep) -> HTMLResponse:
    flt = parse_filter(dict(ctx.request.query_params))
    view = await asyncio.to_thread(read_overview, ctx, flt, time.time())
    totals = view.total.to_dict()
    return page(
        ctx,
        "overview/index.html",
        title="Overview",
        flt=flt,
        ranges=list(RANGES),
        owner=is_owner(ctx.principal),
        totals=totals,
        tokens=totals["input_tokens"] + totals["output_tokens"],
        charts=charts(view),
        models=_choices(view.choices["model"], flt.model),
        prompts=_choices(view.choices["prompt"], flt.prompt),
        keys=_choices(view.choices["key"], flt.key),
        since=view.since,
        spans_known=view.spans_counted,
        span_read_max=SPAN_READ_MAX,
    )
