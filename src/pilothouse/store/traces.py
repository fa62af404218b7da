"""Reading traces and spans back (writes go through `pilothouse.tracing.sink`).

The list filters (docs/traces-query.md) each have an index: model, user, session, status and prompt version
with the project and start time (newest first without sorting), tags by a GIN index on PostgreSQL, cost and
latency (an expression index on `LATENCY_MS`) and scores with the project, words of the kept content by the
full-text index (store/search.py). A page is read by `store/trace_pages.py`, which on SQLite starts from a
rare filter's own index (PostgreSQL's planner makes that choice from its statistics); a page sorted by cost or
latency (`ORDERS`) by `store/trace_sorted.py`, from the same indexes.
"""

from __future__ import annotations

import base64
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, cast, exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB

from pilothouse.store.search import matches
from pilothouse.store.tables import scores, spans, traces
from pilothouse.store.trace_pages import fetch_page
from pilothouse.store.trace_sorted import fetch_sorted

LATENCY_MS = (traces.c.ended_at - traces.c.started_at) * literal_column("1000.0")
"""A trace's duration in ms, rendered as the expression index of migration 0015 is written (a literal, not a
bound parameter, so both engines match it to the index)."""


ORDERS = ("newest", "cost", "latency")
"""How the list can be sorted: newest first (the default), costliest first, slowest first."""
_SORT_KEYS: dict[str, ColumnElement[Any]] = {"cost": traces.c.cost_usd, "latency": LATENCY_MS}


class BadCursor(ValueError):
    """A pagination cursor that this server did not issue."""


class BadFilter(ValueError):
    """A filter value this server cannot use (names the parameter)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_SCORE = re.compile(r"^\s*([\w.:/-]{1,200})\s*(>=|<=|!=|=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class ScoreFilter:
    """Traces with a numeric score `name` whose value compares to `value` (e.g. `groundedness<0.5`)."""

    name: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> ScoreFilter:
        found = _SCORE.match(text)
        if found is None:
            raise BadFilter(f"score filter {text!r} is not NAME OP NUMBER, e.g. groundedness<0.5", "score")
        return cls(found.group(1), found.group(2), float(found.group(3)))

    def compare(self, value: Any) -> ColumnElement[bool]:
        """The comparison on a score value column."""
        result: ColumnElement[bool] = _OPS[self.op](value, self.value)
        return result

    def condition(self) -> ColumnElement[bool]:
        return exists().where(
            scores.c.trace_id == traces.c.id,
            scores.c.name == self.name,
            self.compare(scores.c.value),
        )


@dataclass(frozen=True, slots=True)
class TraceFilter:
    project_id: str
    since: float | None = None
    until: float | None = None
    model: str | None = None
    status: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    source: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    tag: str | None = None
    cost_min: Decimal | None = None
    cost_max: Decimal | None = None
    latency_min_ms: float | None = None
    latency_max_ms: float | None = None
    score: ScoreFilter | None = None
    q: str | None = None
    """Words the trace's kept content must all hold (store/search.py)."""
    ids: tuple[str, ...] = ()
    """Only these traces (by id; empty: no such condition)."""

    def narrowing(self) -> list[ColumnElement[bool]]:
        """The cost and latency range conditions (each with an index of its own, see `store/trace_pages.py`)."""
        cost: list[ColumnElement[bool]] = []
        if self.cost_min is not None:
            cost.append(traces.c.cost_usd >= self.cost_min)
        if self.cost_max is not None:
            cost.append(traces.c.cost_usd <= self.cost_max)
        latency: list[ColumnElement[bool]] = []
        if self.latency_min_ms is not None:
            latency.append(self.latency_min_ms <= LATENCY_MS)
        if self.latency_max_ms is not None:
            latency.append(self.latency_max_ms >= LATENCY_MS)
        return [and_(*group) for group in (cost, latency) if group]

    def conditions(self, dialect: str, *, narrowing: bool = True, search: bool = True) -> list[ColumnElement[bool]]:
        """The WHERE clause of this filter on `traces`, for the connection's dialect; `narrowing=False` leaves
        out the cost, latency, score and word conditions, `search=False` the words (the caller applies them its
        own way)."""
        where: list[ColumnElement[bool]] = [traces.c.project_id == self.project_id]
        equal = {
            traces.c.model: self.model,
            traces.c.status: self.status,
            traces.c.user_id: self.user_id,
            traces.c.session_id: self.session_id,
            traces.c.source: self.source,
            traces.c.prompt_name: self.prompt_name,
            traces.c.prompt_version: self.prompt_version,
        }
        where += [column == value for column, value in equal.items() if value is not None]
        if self.ids:
            where.append(traces.c.id.in_(self.ids))
        if self.since is not None:
            where.append(traces.c.started_at >= self.since)
        if self.until is not None:
            where.append(traces.c.started_at < self.until)
        if self.tag is not None:
            where.append(_has_tag(dialect, self.tag))
        if not narrowing:
            return where
        where += self.narrowing()
        if self.score is not None:
            where.append(self.score.condition())
        if self.q is not None and search:
            where.append(matches(dialect, self.q))
        return where


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return cast(traces.c.tags, JSONB).contains([tag])  # uses ix_traces_tags (GIN, jsonb_path_ops)
    each = func.json_each(traces.c.tags).table_valued("value")
    return exists().select_from(each).where(each.c.value == tag)


def encode_cursor(started_at: float, trace_id: str) -> str:
    return base64.urlsafe_b64encode(f"{started_at!r}|{trace_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        started, trace_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(started), trace_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("invalid cursor: pass back the next_cursor value of a previous page") from exc


def _sorted_cursor(order: str, row: Any) -> str:
    value = format(row.cost_usd, "f") if order == "cost" else repr((row.ended_at - row.started_at) * 1000.0)
    return base64.urlsafe_b64encode(f"{order}|{value}|{row.id}".encode()).decode()


def _decode_sorted(order: str, cursor: str) -> tuple[Any, str]:
    """A cursor of a page sorted by `order`: (the last row's sort value, its id)."""
    try:
        kind, value, trace_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 2)
        if kind != order:
            raise ValueError(kind)
        return (Decimal(value) if order == "cost" else float(value)), trace_id
    except (ValueError, ArithmeticError, UnicodeDecodeError) as exc:
        raise BadCursor(
            f"invalid cursor for order={order}: pass back the next_cursor of a previous page in the same order"
        ) from exc


def _trace_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "api_key_id": row.api_key_id,
        "name": row.name,
        "session_id": row.session_id,
        "user_id": row.user_id,
        "tags": row.tags or [],
        "status": row.status,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "latency_ms": None if row.ended_at is None else round((row.ended_at - row.started_at) * 1000, 3),
        "model": row.model,
        "prompt_name": row.prompt_name,
        "prompt_version": row.prompt_version,
        "source": row.source,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_usd": format(row.cost_usd, "f"),
        "content_purged_at": row.content_purged_at,
    }


def span_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "trace_id": row.trace_id,
        "parent_id": row.parent_id,
        "kind": row.kind,
        "name": row.name,
        "status": row.status,
        "error": row.error,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "model": row.model,
        "provider": row.provider,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "usage_estimated": row.usage_estimated,
        "cost_usd": None if row.cost_usd is None else format(row.cost_usd, "f"),
        "attributes": row.attributes or {},
        "input": row.input,
        "output": row.output,
    }


def list_traces(
    conn: Connection, flt: TraceFilter, *, limit: int = 50, cursor: str | None = None, order: str = "newest"
) -> tuple[list[dict[str, Any]], str | None]:
    """A page in `order` (`ORDERS`: newest first by default, or costliest / slowest first) and the cursor of the
    next page (None at the end)."""
    if order == "newest":
        after = decode_cursor(cursor) if cursor else None
        rows = fetch_page(conn, flt, limit + 1, after)
    elif order in _SORT_KEYS:
        sort_after = _decode_sorted(order, cursor) if cursor else None
        rows = fetch_sorted(conn, flt, _SORT_KEYS[order], limit + 1, sort_after)
    else:
        raise BadFilter(f"order must be one of {', '.join(ORDERS)}, got {order!r}", "order")
    page = [_trace_dict(r) for r in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1]
    if order == "newest":
        return page, encode_cursor(last.started_at, last.id)
    return page, _sorted_cursor(order, last)


def get_trace(conn: Connection, project_id: str, trace_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(traces).where(traces.c.id == trace_id, traces.c.project_id == project_id)).first()
    if row is None:
        return None
    result = _trace_dict(row)
    span_rows = conn.execute(select(spans).where(spans.c.trace_id == trace_id).order_by(spans.c.started_at)).all()
    result["spans"] = [span_dict(s) for s in span_rows]
    return result
