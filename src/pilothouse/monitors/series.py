"""Time series of a project's traces for monitors: one value per time bucket, per metric, scope and group.

Every metric is defined over *units* (a trace, or a score of a trace) with a value `x`: 0/1 for a rate (the
share of answers scored ungrounded, of traces with an error, ...), a number for a mean (cost per request,
feedback, latency). Each bucket carries the count `n`, `sum(x)` and `sum(x^2)`, so detectors can standardise
without reading rows; latency percentiles come from a per-bucket latency histogram, also aggregated in SQL.

All reads of the rows go through `_units` in this module. `read_series(source="rollups" | "auto")` reads the
metrics the trace rollups carry (error rate, cost per request, latency) from them instead
(monitors/series_rollups.py: what they carry, and where their values differ); alert rules read the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from pilothouse.money import from_pico
from pilothouse.store.tables import scores, spans, traces

__all__ = [
    "GROUPS",
    "METRICS",
    "SOURCES",
    "Bucket",
    "Metric",
    "Scope",
    "Series",
    "example_traces",
    "read_series",
    "scope_filter",
]

Kind = Literal["rate", "mean", "quantile", "drift"]
Source = Literal["rows", "rollups"]
SOURCES: tuple[str, ...] = ("rows", "rollups", "auto")
"""What `read_series` may read: the rows, the rollups (or an error), or the rollups where they carry the series."""
Group = Literal["prompt", "prompt_version", "model", "tag"]
GROUPS: tuple[str, ...] = ("prompt", "prompt_version", "model", "tag")

GROUNDED_NAMES = ("grounded", "groundedness")
"""Score names read as groundedness: a value under 0.5 is an ungrounded answer (a hallucination)."""
HALLUCINATION_NAMES = ("hallucination", "hallucinated")
"""Score names read as hallucination: a value of 0.5 or more is a hallucination."""


@dataclass(frozen=True, slots=True)
class Metric:
    """A monitored metric: what its units are and how to read a bucket."""

    name: str
    kind: Kind
    description: str
    unit: str = ""
    quantile: float | None = None
    scale: float = 1.0
    """Multiply stored values by this (cost is stored in pico-dollars)."""


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "hallucination_rate",
            "rate",
            "share of scored answers that are ungrounded (grounded < 0.5 or hallucination >= 0.5)",
        ),
        Metric("refusal_rate", "rate", "share of answers scored `refusal` >= 0.5"),
        Metric("toxicity_rate", "rate", "share of answers scored `toxicity` >= 0.5"),
        Metric("guard_block_rate", "rate", "share of traces a guard blocked (a guard span with status error)"),
        Metric("error_rate", "rate", "share of traces with status error"),
        Metric("cache_hit_rate", "rate", "share of traces answered from the cache"),
        Metric("feedback", "mean", "mean `feedback` score (thumbs up 1, down 0)"),
        Metric("cost_per_request", "mean", "mean cost of a trace", "usd", scale=float(from_pico(1))),
        Metric("latency_mean", "mean", "mean trace latency", "ms"),
        Metric("latency_p50", "quantile", "median trace latency", "ms", quantile=0.5),
        Metric("latency_p95", "quantile", "95th percentile of trace latency", "ms", quantile=0.95),
        Metric("latency_p99", "quantile", "99th percentile of trace latency", "ms", quantile=0.99),
        Metric(
            "input_drift",
            "drift",
            "how well a classifier tells each bucket's inputs from the reference's (AUC: 0.5 none, 1 complete)",
            "auc",
        ),
    )
}

# Latency histogram edges (ms): geometric, 1 ms to ~15 min, 10% wide, so a percentile is within 5%.
_EDGES: tuple[float, ...] = tuple(round(1.1**i, 3) for i in range(144))


@dataclass(frozen=True, slots=True)
class Scope:
    """Which traces a series reads: all of the project's, or only a prompt (and version), model, tag, source."""

    prompt: str | None = None
    prompt_version: int | None = None
    model: str | None = None
    tag: str | None = None
    source: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Scope:
        data = data or {}
        unknown = set(data) - {"prompt", "prompt_version", "model", "tag", "source"}
        if unknown:
            raise ValueError(f"unknown scope fields: {', '.join(sorted(unknown))}")
        version = data.get("prompt_version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValueError("scope.prompt_version must be an integer")
        for key in ("prompt", "model", "tag", "source"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValueError(f"scope.{key} must be a string")
        return cls(data.get("prompt"), version, data.get("model"), data.get("tag"), data.get("source"))

    def to_dict(self) -> dict[str, Any]:
        fields = {
            "prompt": self.prompt,
            "prompt_version": self.prompt_version,
            "model": self.model,
            "tag": self.tag,
            "source": self.source,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket: `n` units, their sum and sum of squares; `value` is the metric (None: no units)."""

    start: float
    n: int
    total: float
    total_sq: float
    value: float | None

    @property
    def variance(self) -> float:
        """The units' sample variance (0 with fewer than two units)."""
        if self.n < 2:
            return 0.0
        mean = self.total / self.n
        return max(0.0, (self.total_sq - self.n * mean * mean) / (self.n - 1))

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "n": self.n, "value": self.value}


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    group: str | None
    """The value of the `by` dimension (None: not grouped)."""
    bucket_s: float
    buckets: list[Bucket] = field(default_factory=list)
    source: Source = "rows"
    """Where the buckets were read: "rows" (one per unit, exact) or "rollups" (monitors/series_rollups.py)."""
    estimated: bool = False
    """The values are estimates (rollup latency: successful traces only, percentiles from a histogram)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "metric": self.metric,
            "group": self.group,
            "bucket_s": self.bucket_s,
            "buckets": [b.to_dict() for b in self.buckets],
        }
        if self.source != "rows":  # the rows' form is unchanged
            out |= {"source": self.source, "estimated": self.estimated}
        return out


def _tag_values(conn: Connection) -> Any:
    """A table-valued function over a trace's tags (a JSON list), one row per tag in column `value`."""
    if conn.dialect.name == "postgresql":  # a trace without tags may hold JSON null: no elements, not an error
        tags = cast(traces.c.tags, JSONB)
        listed = case((func.jsonb_typeof(tags) == "array", tags), else_=cast(literal("[]"), JSONB))
        return func.jsonb_array_elements_text(listed).table_valued("value").alias("tag")
    return func.json_each(traces.c.tags).table_valued("value").alias("tag")


def scope_filter(conn: Connection, project_id: str, scope: Scope, start: float, end: float) -> list[Any]:
    """WHERE clauses on `traces` for a project's traces started in [start, end) within the scope."""
    where: list[Any] = [traces.c.project_id == project_id, traces.c.started_at >= start, traces.c.started_at < end]
    if scope.prompt is not None:
        where.append(traces.c.prompt_name == scope.prompt)
    if scope.prompt_version is not None:
        where.append(traces.c.prompt_version == scope.prompt_version)
    if scope.model is not None:
        where.append(traces.c.model == scope.model)
    if scope.source is not None:
        where.append(traces.c.source == scope.source)
    if scope.tag is not None and conn.dialect.name == "postgresql":
        where.append(cast(traces.c.tags, JSONB).contains([scope.tag]))  # ix_traces_tags (GIN), as store/traces.py
    elif scope.tag is not None:
        tags = _tag_values(conn)
        where.append(exists(select(literal(1)).select_from(tags).where(tags.c.value == scope.tag)))
    return where


def _unit_value(metric: Metric) -> tuple[ColumnElement[Any], list[Any], bool]:
    """(x, extra filters, whether the units are scores) for a metric."""
    name = metric.name
    one, zero = literal(1.0, Float), literal(0.0, Float)
    if name == "hallucination_rate":
        bad = or_(
            and_(scores.c.name.in_(GROUNDED_NAMES), scores.c.value < 0.5),
            and_(scores.c.name.in_(HALLUCINATION_NAMES), scores.c.value >= 0.5),
        )
        names = scores.c.name.in_(GROUNDED_NAMES + HALLUCINATION_NAMES)
        return case((bad, one), else_=zero), [names, scores.c.value.is_not(None)], True
    if name in ("refusal_rate", "toxicity_rate"):
        score_name = name.removesuffix("_rate")
        x = case((scores.c.value >= 0.5, one), else_=zero)
        return x, [scores.c.name == score_name, scores.c.value.is_not(None)], True
    if name == "feedback":
        return cast(scores.c.value, Float), [scores.c.name == "feedback", scores.c.value.is_not(None)], True
    if name == "guard_block_rate":
        blocked = exists().where(spans.c.trace_id == traces.c.id, spans.c.kind == "guard", spans.c.status == "error")
        return case((blocked, one), else_=zero), [], False
    if name == "cache_hit_rate":
        hit = exists().where(spans.c.trace_id == traces.c.id, spans.c.kind == "cache")
        return case((hit, one), else_=zero), [], False
    if name == "error_rate":
        return case((traces.c.status == "error", one), else_=zero), [], False
    if name == "cost_per_request":
        return cast(traces.c.cost_usd, Float), [], False
    if metric.unit == "ms":  # latency_mean and the percentiles
        latency = (traces.c.ended_at - traces.c.started_at) * 1000.0
        return cast(latency, Float), [traces.c.ended_at.is_not(None)], False
    raise ValueError(f"unknown metric {name!r}")


def _bucket_index(conn: Connection, ts: Any, start: float, bucket_s: float) -> ColumnElement[Any]:
    offset = (ts - start) / bucket_s
    if conn.dialect.name == "postgresql":
        return cast(func.floor(offset), Integer)
    return cast(offset, Integer)  # SQLite truncates toward zero; offsets are never negative here


def _group_column(conn: Connection, by: str | None) -> tuple[ColumnElement[Any], Any]:
    if by is None:
        return literal(None, type_=Integer).label("g"), None
    if by == "prompt":
        return traces.c.prompt_name.label("g"), None
    if by == "prompt_version":
        label = traces.c.prompt_name + literal("@") + cast(traces.c.prompt_version, String)
        return label.label("g"), None
    if by == "model":
        return traces.c.model.label("g"), None
    if by == "tag":
        tags = _tag_values(conn)
        return tags.c.value.label("g"), tags
    raise ValueError(f"'by' must be one of {', '.join(GROUPS)}, got {by!r}")


def _units(
    conn: Connection, project_id: str, metric: Metric, scope: Scope, start: float, end: float, by: str | None
) -> Select[Any]:
    """One row per unit: its time, value `x` and group `g` (the one place that reads raw traces)."""
    x, extra, from_scores = _unit_value(metric)
    group, joined = _group_column(conn, by)
    query = select(traces.c.started_at.label("ts"), x.label("x"), group, traces.c.id.label("trace_id"))
    if from_scores:
        query = query.select_from(scores.join(traces, and_(traces.c.id == scores.c.trace_id)))
    else:
        query = query.select_from(traces)
    if joined is not None:
        query = query.join(joined, true())
    # Scores are reached through the project's traces (scope_filter; ix_scores_trace_id). A literal
    # scores.project_id filter as well makes SQLite probe the project's scores once per trace (quadratic).
    where = scope_filter(conn, project_id, scope, start, end) + extra
    if by is not None:
        where.append(group.is_not(None))
    return query.where(*where)


def _quantile(counts: dict[int, int], q: float) -> float | None:
    """The q-quantile from histogram bin counts (bin i covers [_EDGES[i-1], _EDGES[i])), interpolated."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(counts):
        count = counts[index]
        if seen + count >= rank:
            low = 0.0 if index == 0 else _EDGES[index - 1]
            high = _EDGES[min(index, len(_EDGES) - 1)]
            within = (rank - seen) / count if count else 0.0
            return round(low + (high - low) * within, 3)
        seen += count
    return _EDGES[-1]


def read_series(
    conn: Connection,
    project_id: str,
    metric_name: str,
    *,
    start: float,
    end: float,
    bucket_s: float,
    scope: Scope | None = None,
    by: str | None = None,
    source: str = "rows",
) -> list[Series]:
    """The metric per bucket of `bucket_s` seconds from `start` to `end`, one series per group (by: prompt,
    prompt_version, model or tag; None: one series). Empty buckets are included with n = 0.

    `source`: "rows" (exact, what alert rules read), "rollups" (monitors/series_rollups.py: only the metrics,
    scopes, groups and whole-grain windows it carries, else ValueError) or "auto" (the rollups where they carry
    the series, else the rows). Each Series says which it read (`source`, `estimated`)."""
    metric = METRICS.get(metric_name)
    if metric is None:
        raise ValueError(f"unknown metric {metric_name!r}; one of {', '.join(METRICS)}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if not (bucket_s > 0 and math.isfinite(bucket_s)) or not end > start:
        raise ValueError("the window must be non-empty and the bucket positive")
    count = math.ceil((end - start) / bucket_s)
    if count > 10_000:
        raise ValueError(f"{count} buckets is too many; use a wider bucket (at most 10000 per series)")
    if by is not None and by not in GROUPS:
        raise ValueError(f"'by' must be one of {', '.join(GROUPS)}, got {by!r}")
    if source != "rows":
        from pilothouse.monitors.series_rollups import read_rollup_series, rollup_grain

        scoped = scope or Scope()
        grain = rollup_grain(metric, scoped, by, start=start, end=end, bucket_s=bucket_s)
        if source == "rollups" or not isinstance(grain, str):
            return read_rollup_series(
                conn, project_id, metric, start=start, end=end, bucket_s=bucket_s, scope=scoped, by=by
            )
    if metric.kind == "drift":  # embeddings, not SQL aggregates (monitors/drift.py)
        if by is not None:
            raise ValueError("input_drift cannot be grouped with 'by'; filter with a scope (prompt, model, tag)")
        from pilothouse.monitors.drift import drift_series

        return [drift_series(conn, project_id, start=start, end=end, bucket_s=bucket_s, scope=scope or Scope())]
    units = _units(conn, project_id, metric, scope or Scope(), start, end, by).subquery()
    index = _bucket_index(conn, units.c.ts, start, bucket_s).label("b")
    groups: dict[Any, dict[int, Any]] = {}
    if metric.kind == "quantile":
        bins = case(*[(units.c.x < edge, i) for i, edge in enumerate(_EDGES)], else_=len(_EDGES)).label("bin")
        rows = conn.execute(select(units.c.g, index, bins, func.count()).group_by(units.c.g, index, bins)).all()
        hist: dict[Any, dict[int, dict[int, int]]] = {}
        for g, b, bin_, n in rows:
            hist.setdefault(g, {}).setdefault(int(b), {})[int(bin_)] = int(n)
        for g, per_bucket in hist.items():
            for b, counts in per_bucket.items():
                n = sum(counts.values())
                value = _quantile(counts, metric.quantile or 0.5)
                groups.setdefault(g, {})[b] = (n, (value or 0.0) * n, (value or 0.0) ** 2 * n, value)
    else:
        rows = conn.execute(
            select(units.c.g, index, func.count(), func.sum(units.c.x), func.sum(units.c.x * units.c.x)).group_by(
                units.c.g, index
            )
        ).all()
        for g, b, n, total, total_sq in rows:
            s, sq = float(total or 0.0) * metric.scale, float(total_sq or 0.0) * metric.scale**2
            groups.setdefault(g, {})[int(b)] = (int(n), s, sq, s / n if n else None)
    if by is None and not groups:
        groups[None] = {}
    result = []
    for g in sorted(groups, key=lambda v: (v is None, str(v))):
        per_bucket = groups[g]
        buckets = []
        for i in range(count):
            n, s, sq, value = per_bucket.get(i, (0, 0.0, 0.0, None))
            buckets.append(Bucket(start + i * bucket_s, n, s, sq, value))
        result.append(Series(metric.name, None if g is None else str(g), bucket_s, buckets))
    return result


def example_traces(
    conn: Connection,
    project_id: str,
    metric_name: str,
    *,
    start: float,
    end: float,
    scope: Scope | None = None,
    limit: int = 5,
    high: bool = True,
) -> list[str]:
    """Ids of traces that show a move: for a rate, recent units that are events (high) or not; for a mean or a
    percentile, the highest (or lowest) values. Newest first among equals."""
    metric = METRICS[metric_name]
    units = _units(conn, project_id, metric, scope or Scope(), start, end, None).subquery()
    if metric.kind == "rate":
        query = select(units.c.trace_id).where(units.c.x == (1.0 if high else 0.0))
        order: Sequence[Any] = (units.c.ts.desc(),)
    else:
        query = select(units.c.trace_id)
        order = (units.c.x.desc() if high else units.c.x.asc(), units.c.ts.desc())
    rows = conn.execute(query.order_by(*order).limit(limit * 3)).scalars().all()
    seen: list[str] = []
    for trace_id in rows:
        if trace_id not in seen:
            seen.append(trace_id)
        if len(seen) == limit:
            break
    return seen
