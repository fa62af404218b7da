"""One end user's trace counters over a window, per period, read from that user's trace rows.

The Overview filtered by a user reads `store.user_rollups.summarise_user`: the per-user rollups for whole hours and
days, and this module for the partial hours at the window's edges (and for windows whose period is not a whole
number of hours). Read from the rows, driven by the index on (project_id, user_id, started_at)
(`ix_traces_project_user_started`) and aggregated in SQL per period: requests, errors, tokens, cost (pico-dollars,
exact), the latency sum and the latency histogram over the rollups' own bounds (`rollups.LATENCY_BOUNDS_MS`), so
the same `Counters` (and the same percentile estimates) come out as from the rollups (the llm-call speed,
time-to-first-token and caller-mistake counters are not counted: 0). Cache hits and guard blocks live on the
spans: they are counted only when the user has at most `SPAN_READ_MAX` requests in the window read (one join
through the spans' trace index); above that `spans_counted` is False and the caller shows them as unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Connection, Float, and_, case, cast, func, select, type_coerce

from pilothouse.money import to_pico
from pilothouse.store.rollups import _COUNTERS, CACHE_SAVED_ATTR, LATENCY_BOUNDS_MS, Counters, _saved
from pilothouse.store.tables import projects, spans, traces

__all__ = ["SPAN_READ_MAX", "UserActivity", "user_activity", "user_conditions"]

SPAN_READ_MAX = 5000
"""Cache hits and guard blocks are counted from the spans only up to this many requests in the window."""
_LAT = [f"lat_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1)]


@dataclass(slots=True)
class UserActivity:
    """Counters per period start (None: the whole window when no period was asked for)."""

    periods: dict[float | None, Counters] = field(default_factory=dict)
    spans_counted: bool = True
    """Whether `cache_hits`, `cache_saved_pico` and `guard_blocks` were counted (else they read 0: unknown)."""

    def total(self) -> Counters:
        out = Counters()
        for counters in self.periods.values():
            out.add(counters.values)
        return out


def user_conditions(
    conn: Connection,
    project_ids: Sequence[str] | None,
    user_id: str,
    since: float,
    until: float,
    *,
    model: str | None = None,
    prompt_name: str | None = None,
    api_key_id: str | None = None,
) -> list[Any]:
    """The WHERE of one user's traces in `[since, until)`. All projects (None) are named one by one, so the
    project-first index still drives the read."""
    if project_ids is None:
        project_ids = list(conn.execute(select(projects.c.id).order_by(projects.c.id)).scalars())
    where: list[Any] = [
        traces.c.project_id.in_(tuple(project_ids)),
        traces.c.user_id == user_id,
        traces.c.started_at >= since,
        traces.c.started_at < until,
    ]
    if model is not None:
        where.append(traces.c.model == model)
    if prompt_name is not None:
        where.append(traces.c.prompt_name == prompt_name)
    if api_key_id is not None:
        where.append(traces.c.api_key_id == api_key_id)
    return where


def _period(dialect: str, period_s: int) -> Any:
    """floor(started_at / period_s) in SQL (start times are never negative: SQLite's truncation is the floor)."""
    ratio = traces.c.started_at / float(period_s)
    return (cast(func.floor(ratio), BigInteger) if dialect == "postgresql" else cast(ratio, BigInteger)).label("pn")


def _sums() -> list[Any]:
    """The counters summed in SQL, named as the rollups name them."""
    timed = and_(traces.c.status == "ok", traces.c.ended_at.is_not(None))
    ms = type_coerce((traces.c.ended_at - traces.c.started_at) * 1000.0, Float)
    one = func.sum(case((timed, 1), else_=0))
    cols = [
        func.count().label("requests"),
        func.sum(case((traces.c.status == "error", 1), else_=0)).label("errors"),
        func.coalesce(func.sum(traces.c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(traces.c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(type_coerce(traces.c.cost_usd, BigInteger)), 0).label("cost_pico"),
        one.label("latency_count"),
        func.coalesce(func.sum(case((timed, ms), else_=0.0)), 0.0).label("latency_sum_ms"),
    ]
    low: float | None = None
    for name, bound in zip(_LAT, [*LATENCY_BOUNDS_MS, None], strict=True):
        inside = [timed]
        if low is not None:
            inside.append(ms > low)
        if bound is not None:
            inside.append(ms <= bound)
        cols.append(func.sum(case((and_(*inside), 1), else_=0)).label(name))
        low = bound
    return cols


def user_activity(
    conn: Connection,
    project_ids: Sequence[str] | None,
    user_id: str,
    since: float,
    until: float,
    *,
    period_s: int | None = None,
    model: str | None = None,
    prompt_name: str | None = None,
    api_key_id: str | None = None,
) -> UserActivity:
    """The counters of `user_id`'s traces in `[since, until)`, per period of `period_s` seconds (or one for the
    whole window), optionally only those of a model, a prompt and an API key."""
    if period_s is not None and period_s <= 0:
        raise ValueError("a period is a positive number of seconds")
    out = UserActivity()
    if since >= until:
        return out
    where = user_conditions(
        conn, project_ids, user_id, since, until, model=model, prompt_name=prompt_name, api_key_id=api_key_id
    )
    keys = [] if period_s is None else [_period(conn.dialect.name, period_s)]
    query = select(*keys, *_sums()).where(*where)
    if keys:
        query = query.group_by(*keys)
    requests = 0
    for row in conn.execute(query):
        values = row._mapping
        if not values["requests"]:
            continue  # the whole-window aggregate of no rows
        period = None if period_s is None else float(int(values["pn"]) * period_s)
        counted = dict.fromkeys(_COUNTERS, 0) | {k: values[k] for k in values if k != "pn"}
        out.periods.setdefault(period, Counters()).add(counted)
        requests += int(values["requests"])
    out.spans_counted = requests <= SPAN_READ_MAX
    if out.spans_counted and requests:
        _add_span_counters(conn, where, period_s, out)
    return out


def _add_span_counters(conn: Connection, where: Sequence[Any], period_s: int | None, out: UserActivity) -> None:
    """Cache hits (and their savings) and guard blocks of the user's traces, from their cache and guard spans."""
    query = (
        select(traces.c.started_at, spans.c.kind, spans.c.attributes)
        .select_from(traces.join(spans, spans.c.trace_id == traces.c.id))
        .where(*where, spans.c.kind.in_(("cache", "guard")))
    )
    for started, kind, attributes in conn.execute(query):
        attrs = attributes if isinstance(attributes, dict) else {}
        period = None if period_s is None else float(math.floor(started / period_s) * period_s)
        counters = out.periods.setdefault(period, Counters()).values
        if kind == "cache" and CACHE_SAVED_ATTR in attrs:
            saved = _saved(attrs)
            if saved is not None:
                counters["cache_hits"] += 1
                counters["cache_saved_pico"] += to_pico(saved)
        elif kind == "guard" and attrs.get("pilothouse.guard.decision") == "block":
            counters["guard_blocks"] += 1
