"""Cost reports: requests, tokens, cost, cache savings, error rate and speed, grouped by key, project, model,
end user or prompt over a time window.

Where it reads from (`read_from` in the report):
- `rows`: a window of up to `ROWS_UP_TO` requests (the rollups are read first: a few rows), or any report grouped by
  end user. Sums and counts are SQL aggregates (money summed as integer pico-dollars, so totals are exact);
  percentiles are exact, computed in this process from the rows, streamed (`yield_per`, a server-side cursor
  on PostgreSQL) into compact arrays (about 8 bytes per request and per streamed call).
- `rollups`: a larger window is read from the per-minute and per-hour rollups (`costs/rollup_report.py`):
  the same counts and sums, exactly; latency and time-to-first-token percentiles are histogram estimates
  (linear within one bucket of `store.rollups.LATENCY_BOUNDS_MS`), so a report over a month of a million
  requests costs a few thousand rollup rows, not a million trace rows.

Definitions:
- a request is a trace (one gateway call); `errors` are traces with status error;
- latency is a trace's duration (for a stream, until its last event), over successful requests;
- time to first token is the `ttft_ms` of streamed llm spans;
- output tokens per second is the sum of output tokens over the sum of generation time (latency minus
  time to first token; the whole latency for calls that did not stream) of successful llm spans;
- cache savings are the sum of `pilothouse.cache_saved_usd` over cache spans, and each span that carries
  it is a cache hit;
- `unpriced_calls` counts metered llm calls whose price is unknown (their cost is not in `cost_usd`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Connection, Select, and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from pilothouse.costs.grouping import GROUP_BY as GROUP_BY
from pilothouse.costs.rollup_report import ROLLUP_GROUPS, rollup_cost_report
from pilothouse.costs.samples import Samples
from pilothouse.money import from_pico, per_item, usd_string
from pilothouse.store.tables import api_keys, projects, spans, traces

CACHE_SAVED_ATTR = "pilothouse.cache_saved_usd"
STREAM_ROWS = 5_000
ROWS_UP_TO = 20_000
"""A window with more requests than this is reported from the rollups (exact sums, estimated percentiles)."""

_GROUP_COLUMN = {
    "key": traces.c.api_key_id,
    "project": traces.c.project_id,
    "model": traces.c.model,
    "user": traces.c.user_id,
    "prompt": traces.c.prompt_name,
}


@dataclass(frozen=True, slots=True)
class ReportScope:
    """Which traces a report covers: started in [since, until) in the given projects (None: all projects)."""

    project_ids: tuple[str, ...] | None
    since: float
    until: float | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found = [traces.c.started_at >= self.since]
        if self.until is not None:
            found.append(traces.c.started_at < self.until)
        if self.project_ids is not None:
            found.append(traces.c.project_id.in_(self.project_ids))
        return found


@dataclass(slots=True)
class Speed:
    """Time to first token and generation speed of a set of llm calls."""

    llm_calls: int = 0
    generated_tokens: int = 0
    generation_ms: float = 0.0
    unpriced_calls: int = 0
    ttft_ms: Samples = field(default_factory=Samples)

    def tokens_per_s(self) -> float | None:
        if self.generation_ms <= 0:
            return None
        return round(self.generated_tokens * 1000.0 / self.generation_ms, 3)

    def ttft_dict(self) -> dict[str, Any]:
        (p50,) = self.ttft_ms.percentiles(50)
        return {"p50": p50, "samples": len(self.ttft_ms)}


@dataclass(slots=True)
class GroupStats:
    """Everything a report says about one group (or the whole window)."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    cache_hits: int = 0
    cache_saved: Decimal = field(default_factory=Decimal)
    latency_ms: Samples = field(default_factory=Samples)
    speed: Speed = field(default_factory=Speed)

    def to_dict(self) -> dict[str, Any]:
        p50, p95, p99 = self.latency_ms.percentiles(50, 95, 99)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 6) if self.requests else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd_string(self.cost),
            "cost_per_request_usd": usd_string(per_item(self.cost, self.requests)) if self.requests else None,
            "unpriced_calls": self.speed.unpriced_calls,
            "cache_hits": self.cache_hits,
            "cache_saved_usd": usd_string(self.cache_saved),
            "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
            "ttft_ms": self.speed.ttft_dict(),
            "llm_calls": self.speed.llm_calls,
            "output_tokens_per_s": self.speed.tokens_per_s(),
        }


def cache_saved(attributes: Any) -> Decimal | None:
    """The USD a cache span says it saved (a decimal string or number), None when it carries no such value."""
    raw = attributes.get(CACHE_SAVED_ATTR) if isinstance(attributes, dict) else None
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _stream(conn: Connection, stmt: Select[Any]) -> Iterator[Any]:
    """Rows in batches (a server-side cursor on PostgreSQL), so a large window is not loaded at once."""
    with conn.execute(stmt.execution_options(yield_per=STREAM_ROWS)) as result:
        yield from result


class _Groups:
    """The per-group stats plus the whole-window and per-model ones, fed together."""

    def __init__(self) -> None:
        self.groups: dict[str | None, GroupStats] = {}
        self.total = GroupStats()
        self.models: dict[str | None, Speed] = {}

    def both(self, key: str | None) -> tuple[GroupStats, GroupStats]:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = GroupStats()
        return group, self.total

    def speeds(self, key: str | None, model: str | None) -> tuple[Speed, Speed, Speed]:
        group, total = self.both(key)
        per_model = self.models.get(model)
        if per_model is None:
            per_model = self.models[model] = Speed()
        return group.speed, total.speed, per_model


def _add_totals(conn: Connection, by: str, where: Sequence[ColumnElement[bool]], out: _Groups) -> None:
    key = _GROUP_COLUMN[by]
    rows = conn.execute(
        select(
            key.label("g"),
            func.count().label("requests"),
            func.sum(case((traces.c.status == "error", 1), else_=0)).label("errors"),
            func.sum(traces.c.input_tokens).label("input_tokens"),
            func.sum(traces.c.output_tokens).label("output_tokens"),
            func.sum(traces.c.cost_usd, type_=BigInteger).label("pico"),
        )
        .where(*where)
        .group_by(key)
    )
    for row in rows:
        cost = from_pico(int(row.pico or 0))
        for stats in out.both(row.g):
            stats.requests += int(row.requests)
            stats.errors += int(row.errors or 0)
            stats.input_tokens += int(row.input_tokens or 0)
            stats.output_tokens += int(row.output_tokens or 0)
            stats.cost += cost


def _add_latencies(conn: Connection, by: str, where: Sequence[ColumnElement[bool]], out: _Groups) -> None:
    latency = (traces.c.ended_at - traces.c.started_at) * 1000.0
    stmt = select(_GROUP_COLUMN[by].label("g"), latency.label("ms")).where(
        *where, traces.c.status == "ok", traces.c.ended_at.is_not(None)
    )
    for row in _stream(conn, stmt):
        for stats in out.both(row.g):
            stats.latency_ms.add(float(row.ms))


def _add_speed(conn: Connection, by: str, where: Sequence[ColumnElement[bool]], out: _Groups) -> None:
    joined = spans.join(traces, spans.c.trace_id == traces.c.id)
    ttft = func.coalesce(spans.c.ttft_ms, 0.0)
    generated = and_(spans.c.status == "ok", spans.c.output_tokens > 0, spans.c.latency_ms > ttft)
    unpriced = and_(spans.c.cost_usd.is_(None), spans.c.output_tokens.is_not(None))
    llm = [*where, spans.c.kind == "llm"]
    rows = conn.execute(
        select(
            _GROUP_COLUMN[by].label("g"),
            spans.c.model.label("m"),
            func.count().label("calls"),
            func.sum(case((generated, spans.c.output_tokens), else_=0)).label("tokens"),
            func.sum(case((generated, spans.c.latency_ms - ttft), else_=0.0)).label("ms"),
            func.sum(case((unpriced, 1), else_=0)).label("unpriced"),
        )
        .select_from(joined)
        .where(*llm)
        .group_by(_GROUP_COLUMN[by], spans.c.model)
    )
    for row in rows:
        for speed in out.speeds(row.g, row.m):
            speed.llm_calls += int(row.calls)
            speed.generated_tokens += int(row.tokens or 0)
            speed.generation_ms += float(row.ms or 0.0)
            speed.unpriced_calls += int(row.unpriced or 0)
    stmt = (
        select(_GROUP_COLUMN[by].label("g"), spans.c.model.label("m"), spans.c.ttft_ms)
        .select_from(joined)
        .where(*llm, spans.c.status == "ok", spans.c.ttft_ms.is_not(None))
    )
    for row in _stream(conn, stmt):
        for speed in out.speeds(row.g, row.m):
            speed.ttft_ms.add(float(row.ttft_ms))


def _add_cache(conn: Connection, by: str, where: Sequence[ColumnElement[bool]], out: _Groups) -> None:
    stmt = (
        select(_GROUP_COLUMN[by].label("g"), spans.c.attributes)
        .select_from(spans.join(traces, spans.c.trace_id == traces.c.id))
        .where(*where, spans.c.kind == "cache")
    )
    for row in _stream(conn, stmt):
        saved = cache_saved(row.attributes)
        if saved is None:
            continue
        for stats in out.both(row.g):
            stats.cache_hits += 1
            stats.cache_saved += saved


def _names(conn: Connection, by: str, keys: Iterable[str | None]) -> dict[str, str]:
    ids = [k for k in keys if k is not None]
    if not ids or by not in ("key", "project"):
        return {}
    table = api_keys if by == "key" else projects
    return {row.id: row.name for row in conn.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids)))}


def cost_report(conn: Connection, by: str, scope: ReportScope, *, rows_up_to: int = ROWS_UP_TO) -> dict[str, Any]:
    """The report over `scope`, one entry per group (most expensive first), the window's total and the
    speed of each model. Group values are the key id, project id, model, end user or prompt name; calls
    without one (e.g. no `user` field) form the group `null`. Read from the rows up to `rows_up_to` requests,
    from the rollups beyond (see the module)."""
    if by not in _GROUP_COLUMN:
        raise ValueError(f"cannot group by {by!r}: choose one of {', '.join(GROUP_BY)}")
    header = {
        "by": by,
        "since": scope.since,
        "until": scope.until,
        "projects": None if scope.project_ids is None else list(scope.project_ids),
    }
    rolled = rollup_cost_report(conn, by, scope.project_ids, scope.since, scope.until) if by in ROLLUP_GROUPS else None
    if rolled is not None and rolled["total"]["requests"] > rows_up_to:
        names = _names(conn, by, (key for key, _ in rolled["groups"]))
        groups = [{"group": key, "name": names.get(key or ""), **stats} for key, stats in rolled["groups"]]
        return {
            **header,
            "read_from": "rollups",
            "groups": groups,
            "total": rolled["total"],
            "models": rolled["models"],
        }
    where = scope.conditions()
    out = _Groups()
    _add_totals(conn, by, where, out)
    _add_latencies(conn, by, where, out)
    _add_speed(conn, by, where, out)
    _add_cache(conn, by, where, out)
    names = _names(conn, by, out.groups)
    ordered = sorted(out.groups.items(), key=lambda kv: (-kv[1].cost, -kv[1].requests, kv[0] or ""))
    return {
        **header,
        "read_from": "rows",
        "groups": [{"group": key, "name": names.get(key or ""), **stats.to_dict()} for key, stats in ordered],
        "total": out.total.to_dict(),
        "models": [
            {
                "model": model,
                "llm_calls": speed.llm_calls,
                "ttft_ms": speed.ttft_dict(),
                "output_tokens_per_s": speed.tokens_per_s(),
            }
            for model, speed in sorted(out.models.items(), key=lambda kv: kv[0] or "")
        ],
    }
