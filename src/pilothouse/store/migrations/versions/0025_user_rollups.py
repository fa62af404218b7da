"""the Overview filtered by an end user at a million traces: `user_rollups`, the rollups' counters per end user.

- `user_rollups` (store/user_rollups.py): per project, end user, grain (hour 3600, UTC day 86400), bucket start,
  key, model and prompt name ("" for none), the additive counters of `trace_rollups`; the trace sink keeps them for
  traces that name a user. The primary key leads with (project, user, grain, bucket start): the read's index.

Filled here from the traces already stored that name a user, in keyset-paged chunks of 5,000 traces by id (their
llm, guard, cache and failed spans read per chunk), each trace counted by the rule written out below as it stands
today (store/rollups.py `_trace_counters`), so this migration does not change when the code does; counted rows
are upserted every 50,000 so memory stays bounded. Measured on bench/trace_query.py's data (every trace names one
of 5,000 users; 43,000 rows per 100,000 traces), a 2-core machine shared with other work (load 4 to 5): 5 to 10 s
per 100,000 traces on SQLite, 9 to 12 s on PostgreSQL, so a few minutes at most for a million.

Revision ID: 0025_user_rollups
Revises: 0024_ui_sessions
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0025_user_rollups"
down_revision = "0024_ui_sessions"
branch_labels = None
depends_on = None

GRAINS = (3600, 86_400)
_KEY = ("project_id", "user_id", "bucket_s", "bucket_start", "api_key_id", "model", "prompt_name")
_INTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_pico",
    "latency_count",
    "cache_hits",
    "cache_saved_pico",
    "guard_blocks",
    "llm_calls",
    "generated_tokens",
    "unpriced_calls",
    "ttft_count",
    "caller_errors",
)
_FLOATS = ("latency_sum_ms", "generation_ms", "ttft_sum_ms")
BOUNDS_MS = (25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0)
_LAT = tuple(f"lat_{i:02d}" for i in range(len(BOUNDS_MS) + 1))
_TTFT = tuple(f"ttft_{i:02d}" for i in range(len(BOUNDS_MS) + 1))
_COUNTERS = _INTS + _FLOATS + _LAT + _TTFT
CACHE_SAVED_ATTR = "pilothouse.cache_saved_usd"
VERSION_CAUSED_CODES = frozenset({"upstream_bad_request", "context_length_exceeded"})
CHUNK = 5000
FLUSH_AT = 50_000
"""Counted rows held in memory at most before they are written (a 1M-trace store has millions)."""


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("bucket_s", sa.Integer, nullable=False),
        sa.Column("bucket_start", sa.Float, nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_name", sa.String(200), nullable=False),
        *[sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in _INTS],
        *[sa.Column(name, sa.Float, nullable=False, server_default="0") for name in _FLOATS],
        *[sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in _LAT + _TTFT],
    ]


def _pico(value: Decimal) -> int:
    return int(value.scaleb(12).to_integral_value())  # ROUND_HALF_EVEN, as money.to_pico


def _saved(attrs: Mapping[Any, Any]) -> Decimal | None:
    raw = attrs.get(CACHE_SAVED_ATTR)
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _bucket(value: float | None) -> int:
    if value is None:
        return len(BOUNDS_MS)
    return next((i for i, bound in enumerate(BOUNDS_MS) if value <= bound), len(BOUNDS_MS))


def _caller_error(attrs: Mapping[Any, Any]) -> bool:
    status, code = attrs.get("http.response.status_code"), attrs.get("error.type")
    if isinstance(status, bool) or not isinstance(status, int):
        return False
    return 400 <= status < 500 and status != 429 and code not in VERSION_CAUSED_CODES


def _span(s: Mapping[Any, Any], attrs: Mapping[Any, Any], out: dict[str, float]) -> None:
    kind = s["kind"]
    if kind == "cache" and CACHE_SAVED_ATTR in attrs:
        saved = _saved(attrs)
        if saved is not None:
            out["cache_hits"] += 1
            out["cache_saved_pico"] += _pico(saved)
    elif kind == "guard" and attrs.get("pilothouse.guard.decision") == "block":
        out["guard_blocks"] += 1
    elif kind == "llm":
        out["llm_calls"] += 1
        if s["cost_usd"] is None and s["output_tokens"] is not None:
            out["unpriced_calls"] += 1
        ttft, latency, tokens = s["ttft_ms"], s["latency_ms"], s["output_tokens"]
        if s["status"] == "ok" and ttft is not None:
            out["ttft_count"] += 1
            out["ttft_sum_ms"] += ttft
            out[_TTFT[_bucket(ttft)]] += 1
        if s["status"] == "ok" and tokens and latency is not None and latency > (ttft or 0.0):
            out["generated_tokens"] += tokens
            out["generation_ms"] += latency - (ttft or 0.0)


def _trace(t: Mapping[Any, Any], trace_spans: Iterable[Mapping[Any, Any]]) -> dict[str, float]:
    """What one stored trace adds to its buckets (store/rollups.py `_trace_counters` of a first part)."""
    out: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
    out["requests"] = 1
    out["errors"] = 1 if t["status"] == "error" else 0
    out["input_tokens"] = t["input_tokens"] or 0
    out["output_tokens"] = t["output_tokens"] or 0
    out["cost_pico"] = int(t["cost_usd"] or 0)  # the column holds pico-dollars
    if t["status"] == "ok" and t["ended_at"] is not None:
        ms = (t["ended_at"] - t["started_at"]) * 1000.0
        out["latency_count"], out["latency_sum_ms"] = 1, ms
        out[_LAT[_bucket(ms)]] = 1
    caller = False
    for s in trace_spans:
        attrs = s["attributes"]
        if isinstance(attrs, str):  # SQLite hands JSON back as text here
            attrs = json.loads(attrs)
        attrs = attrs if isinstance(attrs, dict) else {}
        _span(s, attrs, out)
        caller = caller or (s["status"] == "error" and _caller_error(attrs))
    out["caller_errors"] = 1 if t["status"] == "error" and caller else 0
    return out


def _backfill(conn: sa.Connection) -> None:
    names = ("id", "project_id", "user_id", "api_key_id", "model", "prompt_name", "status", "started_at")
    traces = sa.table(
        "traces", *(sa.column(n) for n in (*names, "ended_at", "input_tokens", "output_tokens", "cost_usd"))
    )
    span_names = ("trace_id", "kind", "status", "attributes", "cost_usd", "output_tokens", "ttft_ms", "latency_ms")
    spans = sa.table("spans", *(sa.column(n) for n in span_names))
    table = sa.table("user_rollups", *(sa.column(n) for n in (*_KEY, *_COUNTERS)))
    named = sa.and_(traces.c.user_id.is_not(None), traces.c.user_id != "")
    wanted = spans.c.kind.in_(("llm", "guard", "cache")) | (spans.c.status == "error")
    rows: dict[tuple[Any, ...], dict[str, float]] = {}
    last = ""
    while True:
        query = sa.select(traces).where(named, traces.c.id > last).order_by(traces.c.id).limit(CHUNK)
        page = [r._mapping for r in conn.execute(query)]
        if not page:
            break
        by_trace: dict[str, list[Mapping[Any, Any]]] = {}
        query = sa.select(spans).where(spans.c.trace_id.in_([t["id"] for t in page]), wanted)
        for s in conn.execute(query):
            by_trace.setdefault(s.trace_id, []).append(s._mapping)
        for t in page:
            counters = _trace(t, by_trace.get(t["id"], ()))
            started = float(t["started_at"])
            dims = (t["api_key_id"] or "", t["model"] or "", t["prompt_name"] or "")
            for grain in GRAINS:
                key = (t["project_id"], t["user_id"], grain, float(math.floor(started / grain) * grain), *dims)
                have = rows.get(key)
                if have is None:
                    rows[key] = counters.copy()
                else:
                    for name, value in counters.items():
                        have[name] += value
        last = page[-1]["id"]
        if len(rows) >= FLUSH_AT:
            _flush(conn, table, rows)
    _flush(conn, table, rows)


def _flush(conn: sa.Connection, table: Any, rows: dict[tuple[Any, ...], dict[str, float]]) -> None:
    """Add the counted rows (`counter = counter + excluded`: a bucket may span chunks) and forget them."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_KEY), set_={name: table.c[name] + stmt.excluded[name] for name in _COUNTERS}
    )
    values = [dict(zip(_KEY, key, strict=True)) | counters for key, counters in sorted(rows.items())]
    for start in range(0, len(values), 1000):
        conn.execute(stmt, values[start : start + 1000])
    rows.clear()


def upgrade() -> None:
    op.create_table(
        "user_rollups",
        *_columns(),
        sa.PrimaryKeyConstraint(*_KEY, name="pk_user_rollups"),
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("user_rollups")
