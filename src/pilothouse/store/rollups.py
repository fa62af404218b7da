"""Pre-aggregated trace counters per minute, hour and UTC day, so reports over time need not read every trace.

One row per (project, grain, bucket start, key, model, prompt name, prompt version) holds additive counters:
requests, errors, tokens, cost (pico-dollars, exact), a latency histogram of successful requests
(`LATENCY_BOUNDS_MS`), cache hits and savings, guard blocks, the llm-call speed sums, and the failed requests a
caller mistake ended (`caller_errors`, store/caller_errors.py). The trace sink adds
each stored batch in the same transaction (`add_traces`), so a committed trace is always counted once; the
upsert is `counter = counter + excluded.counter` on both SQLite and PostgreSQL, taken in key order so
concurrent writers never deadlock. `rebuild` recomputes them from the rows (after a restore, or for traces
written before migration 0013); run it over windows in the past, as traces stored while it runs may be missed.

`summarise` reads a window `[since, until)` exactly: whole UTC days from the day rows (migration 0023), the
partial days at its edges from hour rows, the partial hours from minute rows, and the partial minutes at the
very edges from the trace rows themselves.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pilothouse.money import to_pico
from pilothouse.store.caller_errors import ended_by_caller
from pilothouse.store.engine import Store
from pilothouse.store.tables import spans, trace_rollups, traces

__all__ = [
    "GRAINS",
    "LATENCY_BOUNDS_MS",
    "Counters",
    "add_traces",
    "rebuild",
    "summarise",
]

MINUTE, HOUR, DAY = 60, 3600, 86_400
GRAINS = (MINUTE, HOUR, DAY)
LATENCY_BOUNDS_MS = (25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0)
"""Upper bounds of the latency buckets `lat_00`..`lat_10`; `lat_11` counts the slower ones."""
_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
_KEY = ("project_id", "bucket_s", "bucket_start", "api_key_id", "model", "prompt_name", "prompt_version")
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
_LAT = tuple(f"lat_{i:02d}" for i in range(_BUCKETS))
_TTFT = tuple(f"ttft_{i:02d}" for i in range(_BUCKETS))
"""Time to first token of streamed llm calls per bucket of `LATENCY_BOUNDS_MS` (migration 0015)."""
_COUNTERS = _INTS + _FLOATS + _LAT + _TTFT
CACHE_SAVED_ATTR = "pilothouse.cache_saved_usd"
"""Set on a cache span that answered from the cache (the same attribute the cost report reads)."""
GROUPS = {"key": "api_key_id", "project": "project_id", "model": "model", "prompt": "prompt_name"}
"""What a summary can group by (the cost report's groups, less the end user: too many to pre-aggregate)."""


def histogram_percentile(counts: Sequence[int], q: float) -> float | None:
    """An estimate of the q-th percentile (0-100) from counts per `LATENCY_BOUNDS_MS` bucket (the last one open):
    linear within the bucket; None when the histogram is empty."""
    total = sum(counts)
    if not total:
        return None
    rank, seen, low = q / 100.0 * total, 0, 0.0
    for i, count in enumerate(counts):
        high = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else max(low * 2, low + 1.0)
        if count and seen + count >= rank:
            return round(low + (high - low) * max(rank - seen, 0.0) / count, 3)
        seen += count
        low = high
    return round(low, 3)


@dataclass(slots=True)
class Counters:
    """The additive counters of one rollup row (or of a sum of them)."""

    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))

    def add(self, other: Mapping[Any, Any]) -> None:
        for name in _COUNTERS:  # PostgreSQL sums BIGINT as NUMERIC (a Decimal)
            raw = other[name] or 0
            self.values[name] += float(raw) if name in _FLOATS else int(raw)

    def latency_percentile(self, q: float) -> float | None:
        """An estimate of the q-th percentile (0-100) of latency: linear within the histogram bucket."""
        return histogram_percentile([int(self.values[name]) for name in _LAT], q)

    def to_dict(self) -> dict[str, Any]:
        v = self.values
        requests, cost = int(v["requests"]), Decimal(int(v["cost_pico"])) / Decimal(10**12)
        return {
            "requests": requests,
            "errors": int(v["errors"]),
            "error_rate": round(v["errors"] / requests, 6) if requests else None,
            "input_tokens": int(v["input_tokens"]),
            "output_tokens": int(v["output_tokens"]),
            "cost_usd": format(cost.normalize(), "f") if cost else "0",
            "cache_hits": int(v["cache_hits"]),
            "cache_saved_usd": format((Decimal(int(v["cache_saved_pico"])) / Decimal(10**12)).normalize(), "f"),
            "guard_blocks": int(v["guard_blocks"]),
            "latency_ms": {
                "mean": round(v["latency_sum_ms"] / v["latency_count"], 3) if v["latency_count"] else None,
                "p50": self.latency_percentile(50),
                "p95": self.latency_percentile(95),
                "p99": self.latency_percentile(99),
            },
            "llm_calls": int(v["llm_calls"]),
            "output_tokens_per_s": round(v["generated_tokens"] * 1000.0 / v["generation_ms"], 3)
            if v["generation_ms"] > 0
            else None,
        }


def _saved(attributes: Mapping[Any, Any]) -> Decimal | None:
    raw = attributes.get(CACHE_SAVED_ATTR)
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _bucket(value: float | None) -> int:
    if value is None:
        return _BUCKETS - 1
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if value <= bound:
            return i
    return _BUCKETS - 1


def _trace_counters(
    trace: Mapping[Any, Any], trace_spans: Iterable[Mapping[Any, Any]], *, first_part: bool = True
) -> dict[str, float]:
    """What one trace adds to its buckets. A later part of a trace written in parts (tracing/merge.py) adds its
    tokens, cost and spans, but is not another request: requests, errors and latency count its first part only."""
    out: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
    out["requests"] = 1 if first_part else 0
    out["errors"] = 1 if first_part and trace["status"] == "error" else 0
    out["input_tokens"] = trace["input_tokens"] or 0
    out["output_tokens"] = trace["output_tokens"] or 0
    cost = trace["cost_usd"]
    out["cost_pico"] = cost if isinstance(cost, int) else to_pico(Decimal(str(cost or 0)))
    if first_part and trace["status"] == "ok" and trace["ended_at"] is not None:
        ms = (trace["ended_at"] - trace["started_at"]) * 1000.0
        out["latency_count"], out["latency_sum_ms"] = 1, ms
        out[_LAT[_bucket(ms)]] = 1
    failed: list[Mapping[str, Any]] = []
    for s in trace_spans:
        _span_counters(s, out)
        if s["status"] == "error" and isinstance(s["attributes"], dict):
            failed.append(s["attributes"])
    if first_part and ended_by_caller(trace["status"], failed):
        out["caller_errors"] = 1
    return out


def _span_counters(s: Mapping[Any, Any], out: dict[str, float]) -> None:
    kind, attrs = s["kind"], s["attributes"] if isinstance(s["attributes"], dict) else {}
    if kind == "cache" and CACHE_SAVED_ATTR in attrs:
        saved = _saved(attrs)
        if saved is not None:
            out["cache_hits"] += 1
            out["cache_saved_pico"] += to_pico(saved)
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


def _keys(trace: Mapping[Any, Any]) -> list[tuple[Any, ...]]:
    started = float(trace["started_at"])
    dims = (trace["api_key_id"] or "", trace["model"] or "", trace["prompt_name"] or "", trace["prompt_version"] or 0)
    return [(trace["project_id"], grain, float(math.floor(started / grain) * grain), *dims) for grain in GRAINS]


def _accumulate(
    into: dict[tuple[Any, ...], dict[str, float]],
    trace: Mapping[Any, Any],
    trace_spans: Iterable[Mapping[Any, Any]],
    *,
    first_part: bool = True,
) -> None:
    counters = _trace_counters(trace, trace_spans, first_part=first_part)
    for key in _keys(trace):
        row = into.get(key)
        if row is None:
            into[key] = dict(counters)
        else:
            _add_into(row, counters)


def _add_into(row: dict[str, float], counters: Mapping[str, float]) -> None:
    """`row += counters`, counter by counter (most of a trace's counters are 0: skipped)."""
    for name, value in counters.items():
        if value:
            row[name] += value


@functools.cache
def _rollup_upsert(dialect_name: str) -> Any:
    """The counters' upsert, built once per dialect (building it costs more than running it)."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(trace_rollups)
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={name: trace_rollups.c[name] + stmt.excluded[name] for name in _COUNTERS},
    )


def _upsert(conn: Connection, rows: dict[tuple[Any, ...], dict[str, float]]) -> None:
    if not rows:
        return
    values = [dict(zip(_KEY, key, strict=True)) | counters for key, counters in sorted(rows.items())]
    stmt = _rollup_upsert(conn.dialect.name)
    for start in range(0, len(values), 500):
        conn.execute(stmt, values[start : start + 500])


def add_traces(
    conn: Connection,
    trace_rows: Sequence[Mapping[Any, Any]],
    span_rows: Sequence[Mapping[Any, Any]],
    *,
    merged: Collection[str] = (),
) -> None:
    """Count stored trace parts (rows as `TraceRecord.row()` makes them) in the caller's transaction; `merged`:
    the ids of traces that were stored before (these rows are later parts: not new requests)."""
    by_trace: dict[str, list[Mapping[Any, Any]]] = {}
    for s in span_rows:
        by_trace.setdefault(s["trace_id"], []).append(s)
    # Traces of a batch mostly share their buckets (the same minute, key and model): summed once per set of
    # buckets, then added to each grain's row, instead of each trace added to its three rows.
    shared: dict[tuple[tuple[Any, ...], ...], dict[str, float]] = {}
    for t in trace_rows:
        counters = _trace_counters(t, by_trace.get(t["id"], ()), first_part=t["id"] not in merged)
        buckets = tuple(_keys(t))
        have = shared.get(buckets)
        if have is None:
            shared[buckets] = counters
        else:
            _add_into(have, counters)
    rows: dict[tuple[Any, ...], dict[str, float]] = {}
    for buckets, counters in shared.items():
        for key in buckets:
            row = rows.get(key)
            if row is None:
                rows[key] = dict(counters)
            else:
                _add_into(row, counters)
    _upsert(conn, rows)
    from pilothouse.store import user_rollups  # here: it imports this module

    user_rollups.add(conn, trace_rows, span_rows, merged=merged)  # the per-user counters, same transaction


_SPAN_COLS = (
    spans.c.trace_id,
    spans.c.kind,
    spans.c.status,
    spans.c.attributes,
    spans.c.cost_usd,
    spans.c.output_tokens,
    spans.c.ttft_ms,
    spans.c.latency_ms,
)


def _window(project_id: str | None, since: float | None, until: float | None) -> list[Any]:
    where: list[Any] = []
    if project_id is not None:
        where.append(traces.c.project_id == project_id)
    if since is not None:
        where.append(traces.c.started_at >= since)
    if until is not None:
        where.append(traces.c.started_at < until)
    return where


def _from_rows(conn: Connection, where: Sequence[Any], *, chunk: int = 5000) -> dict[tuple[Any, ...], dict[str, float]]:
    """Counters of the traces matching `where`, computed from the rows in keyset-paged chunks."""
    rows: dict[tuple[Any, ...], dict[str, float]] = {}
    last: tuple[float, str] | None = None
    order = (traces.c.started_at, traces.c.id)
    while True:
        query = select(traces).where(*where)
        if last is not None:
            query = query.where(
                (traces.c.started_at > last[0]) | and_(traces.c.started_at == last[0], traces.c.id > last[1])
            )
        page = [r._mapping for r in conn.execute(query.order_by(*order).limit(chunk))]
        if not page:
            return rows
        wanted = (spans.c.kind.in_(("llm", "guard", "cache")) | (spans.c.status == "error"),)
        by_trace: dict[str, list[Mapping[Any, Any]]] = {}
        ids = [t["id"] for t in page]
        for s in conn.execute(select(*_SPAN_COLS).where(spans.c.trace_id.in_(ids), *wanted)):
            by_trace.setdefault(s.trace_id, []).append(s._mapping)
        for t in page:
            _accumulate(rows, t, by_trace.get(t["id"], ()))
        last = (page[-1]["started_at"], page[-1]["id"])


def _floor(value: float, grain: int) -> float:
    return float(math.floor(value / grain) * grain)


def rebuild(
    store: Store, *, project_id: str | None = None, since: float | None = None, until: float | None = None
) -> int:
    """Recompute the rollups of `[since, until)` (widened to whole days, the largest grain) from the trace rows;
    returns the number of traces counted. One transaction: readers see the old rollups or the new ones."""
    lo = None if since is None else _floor(since, DAY)
    hi = None if until is None else _floor(until, DAY) + (DAY if until % DAY else 0)
    with store.begin() as conn:
        gone = delete(trace_rollups)
        if project_id is not None:
            gone = gone.where(trace_rollups.c.project_id == project_id)
        if lo is not None:
            gone = gone.where(trace_rollups.c.bucket_start >= lo)
        if hi is not None:
            gone = gone.where(trace_rollups.c.bucket_start < hi)
        conn.execute(gone)
        rows = _from_rows(conn, _window(project_id, lo, hi))
        _upsert(conn, rows)
        from pilothouse.store import user_rollups  # here: it imports this module

        user_rollups.rebuild(conn, project_id=project_id, since=lo, until=hi)
    return sum(int(c["requests"]) for k, c in rows.items() if k[1] == HOUR)


def _pieces(
    since: float, until: float, *, period_s: int | None = None, grains: Sequence[int] = GRAINS
) -> tuple[list[tuple[int, float, float]], list[tuple[float, float]]]:
    """Cover [since, until) with whole days, then whole hours, then whole minutes (of `grains`; with `period_s`,
    only grains that divide it, so no rollup row straddles two periods); what is left (under the finest grain at
    each edge) is read from the rows."""
    rolled: list[tuple[int, float, float]] = []
    raw: list[tuple[float, float]] = []

    def cover(lo: float, hi: float, grains: Sequence[int]) -> None:
        if lo >= hi:
            return
        if not grains:
            raw.append((lo, hi))
            return
        grain, finer = grains[0], grains[1:]
        g_lo, g_hi = math.ceil(lo / grain) * grain, math.floor(hi / grain) * grain
        if g_lo < g_hi:
            rolled.append((grain, float(g_lo), float(g_hi)))
            cover(lo, float(g_lo), finer)
            cover(float(g_hi), hi, finer)
        else:
            cover(lo, hi, finer)

    cover(since, until, sorted((g for g in grains if period_s is None or period_s % g == 0), reverse=True))
    return rolled, raw


def summarise(
    conn: Connection,
    project_ids: Sequence[str] | None,
    since: float,
    until: float,
    *,
    by: str | None = None,
    model: str | None = None,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
) -> dict[str | int | None, Counters]:
    """Counters over `[since, until)` per group (`by`: key, project, model, prompt, version; None: one group
    `None`), optionally for one model, prompt or prompt version. Exact: see the module."""
    if by is not None and by not in (*GROUPS, "version"):
        raise ValueError(f"cannot group by {by!r}: choose one of {', '.join((*GROUPS, 'version'))}")
    column = "prompt_version" if by == "version" else GROUPS.get(by or "")
    out: dict[str | int | None, Counters] = {}

    def put(group: Any, values: Mapping[Any, Any]) -> None:
        key = None if column is None else (group if group not in ("", 0) else None)
        out.setdefault(key, Counters()).add(values)

    rolled, raw = _pieces(since, until)
    for grain, lo, hi in rolled:
        where = [
            trace_rollups.c.bucket_s == grain,
            trace_rollups.c.bucket_start >= lo,
            trace_rollups.c.bucket_start < hi,
        ]
        if project_ids is not None:
            where.append(trace_rollups.c.project_id.in_(tuple(project_ids)))
        if model is not None:
            where.append(trace_rollups.c.model == model)
        if prompt_name is not None:
            where.append(trace_rollups.c.prompt_name == prompt_name)
        if prompt_version is not None:
            where.append(trace_rollups.c.prompt_version == prompt_version)
        group_col = [trace_rollups.c[column].label("g")] if column else []
        sums = [func.sum(trace_rollups.c[name]).label(name) for name in _COUNTERS]
        query = select(*group_col, *sums).where(*where)
        if column:
            query = query.group_by(trace_rollups.c[column])
        for row in conn.execute(query):
            if row.requests:
                put(row.g if column else None, row._mapping)
    for lo, hi in raw:
        where = _window(None, lo, hi)
        if project_ids is not None:
            where.append(traces.c.project_id.in_(tuple(project_ids)))
        if model is not None:
            where.append(traces.c.model == model)
        if prompt_name is not None:
            where.append(traces.c.prompt_name == prompt_name)
        if prompt_version is not None:
            where.append(traces.c.prompt_version == prompt_version)
        for key, values in _from_rows(conn, where).items():
            if key[1] == HOUR:
                put(dict(zip(_KEY, key, strict=True))[column] if column else None, values)
    return out
