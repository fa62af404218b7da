"""The cost report read from the rollups equals the one read from the rows, on SQLite and PostgreSQL: the same
groups, counts and exact sums over windows with ragged edges (not on minutes or hours) and open ends, and
percentiles within one histogram bucket of the exact ones."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from pilothouse.costs.report import ReportScope, cost_report
from pilothouse.store.engine import Store
from pilothouse.store.keys import create_key
from pilothouse.store.projects import create_project
from pilothouse.store.tables import trace_rollups
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.costs.histogram_bounds import check_estimate

BASE = 1_800_000_000.0 + 1234.5  # not on an hour or a minute
SPREAD_S = 50 * 3600.0  # holds a whole UTC day: the day rows are read
PERCENTILE_FIELDS = ("latency_ms", "ttft_ms")


FIELD = {"model": "model", "key": "api_key_id", "project": "project_id", "prompt": "prompt_name"}


@dataclass
class Data:
    project: str
    other: str
    calls: list[TraceRecord]


def _call(rng: random.Random, project: str, keys: list[str | None], started: float) -> TraceRecord:
    model = rng.choice(["big", "small", "tiny"])
    trace = TraceRecord(
        project_id=project,
        name="chat",
        api_key_id=rng.choice(keys),
        started_at=started,
        model=model,
        user_id=rng.choice(["alice", "bob", None]),
    )
    trace.prompt_name = rng.choice(["support", "triage", None])
    failed = rng.random() < 0.1
    duration_ms = rng.lognormvariate(5.5, 1.5)  # 5 ms to tens of seconds: every histogram bucket
    if rng.random() < 0.1:  # a cache hit: no llm call
        cache = trace.span("cache", "cache lookup")
        cache.started_at = started
        cache.attributes["pilothouse.cache_saved_usd"] = str(Decimal(rng.randint(1, 10**9)) / Decimal(10**12))
        cache.finish()
    else:
        span = trace.span("llm", f"chat {model}")
        span.started_at, span.model = started, model
        span.input_tokens, span.output_tokens = rng.randint(1, 500), rng.randint(0, 300)
        span.cost_usd = None if rng.random() < 0.05 else Decimal(rng.randint(0, 10**10)) / Decimal(10**12)
        span.finish(status="error" if failed else "ok", error="boom" if failed else None)
        span.latency_ms = duration_ms
        span.ttft_ms = duration_ms * rng.random() if rng.random() < 0.5 else None
    trace.finish()
    trace.status = "error" if failed else "ok"
    trace.ended_at = started + duration_ms / 1000.0
    return trace


@pytest.fixture
def data(store: Store, tmp_path: Path) -> Iterator[Data]:
    rng = random.Random(13)
    with store.begin() as conn:
        project = create_project(conn, "shop").id
        other = create_project(conn, "lab").id
        keys: list[str | None] = [
            create_key(conn, project_id=project, name=name, role="service", created_by=None)[0].id
            for name in ("web", "batch")
        ]
    calls = [_call(rng, project, [*keys, None], BASE + rng.random() * SPREAD_S) for _ in range(260)]
    calls += [_call(rng, other, [None], BASE + rng.random() * SPREAD_S) for _ in range(20)]
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        for call in calls:
            sink.write_sync(call)
    finally:
        sink.close()
    yield Data(project, other, calls)


def _latencies(data: Data, scope: ReportScope, by: str, group: Any) -> tuple[list[float], list[float]]:
    """The exact latencies and times to first token a group of the report covers (None: the whole window)."""
    latency, ttft = [], []
    for t in data.calls:
        if scope.project_ids is not None and t.project_id not in scope.project_ids:
            continue
        if t.started_at < scope.since or (scope.until is not None and t.started_at >= scope.until):
            continue
        if by != "total" and getattr(t, FIELD[by]) != group:
            continue
        if t.status == "ok" and t.ended_at is not None:
            latency.append((t.ended_at - t.started_at) * 1000.0)
        ttft += [s.ttft_ms for s in t.spans if s.kind == "llm" and s.status == "ok" and s.ttft_ms is not None]
    return latency, ttft


def _same_stats(rows: dict[str, Any], rolled: dict[str, Any], exact: tuple[list[float], list[float]]) -> None:
    assert {k: v for k, v in rolled.items() if k not in PERCENTILE_FIELDS} == {
        k: v for k, v in rows.items() if k not in PERCENTILE_FIELDS
    }
    latency, ttft = exact
    for q in (50, 95, 99):
        check_estimate(latency, q, rolled["latency_ms"][f"p{q}"])
    assert rolled["ttft_ms"]["samples"] == rows["ttft_ms"]["samples"] == len(ttft)
    check_estimate(ttft, 50, rolled["ttft_ms"]["p50"])


def _both(store: Store, by: str, scope: ReportScope) -> tuple[dict[str, Any], dict[str, Any], ReportScope]:
    with store.connect() as conn:
        rows = cost_report(conn, by, scope, rows_up_to=10**9)
        rolled = cost_report(conn, by, scope, rows_up_to=0)
    assert (rows["read_from"], rolled["read_from"]) == ("rows", "rollups")
    return rows, rolled, scope


WINDOWS = [
    (BASE - 60.0, None),  # everything, open end
    (BASE + 61.7, BASE + 2 * 3600 + 1234.9),  # ragged: partial minutes, partial hours, one whole hour
    (BASE + 600.0 - 1234.5, BASE + 3 * 3600 - 1234.5),  # whole hours only
    (BASE + 100.25, BASE + 130.5),  # under a minute: rows only
]


def test_rollups_match_rows(store: Store, data: Data) -> None:
    for by in ("model", "key", "project", "prompt"):
        for since, until in WINDOWS:
            _compare(data, _both(store, by, ReportScope((data.project,), since, until)), by)
    _compare(data, _both(store, "project", ReportScope(None, BASE + 30.0, BASE + SPREAD_S - 30.0)), "project")


def _compare(data: Data, reports: tuple[dict[str, Any], dict[str, Any], ReportScope], by: str) -> None:
    rows, rolled, scope = reports
    assert [g["group"] for g in rolled["groups"]] == [g["group"] for g in rows["groups"]]
    assert [g["name"] for g in rolled["groups"]] == [g["name"] for g in rows["groups"]]
    for mine, theirs in zip(rows["groups"], rolled["groups"], strict=True):
        _same_stats(mine, theirs, _latencies(data, scope, by, mine["group"]))
    _same_stats(rows["total"], rolled["total"], _latencies(data, scope, "total", None))
    assert [m["model"] for m in rolled["models"]] == [m["model"] for m in rows["models"]]
    for mine, theirs in zip(rows["models"], rolled["models"], strict=True):
        assert (theirs["llm_calls"], theirs["output_tokens_per_s"]) == (mine["llm_calls"], mine["output_tokens_per_s"])
        check_estimate(_latencies(data, scope, "model", mine["model"])[1], 50, theirs["ttft_ms"]["p50"])


def test_which_source_answers(store: Store, data: Data) -> None:
    scope = ReportScope((data.project,), BASE - 60.0)
    with store.connect() as conn:
        assert cost_report(conn, "model", scope)["read_from"] == "rows"  # 260 requests: under the default
        assert cost_report(conn, "model", scope, rows_up_to=259)["read_from"] == "rollups"
        assert cost_report(conn, "model", scope, rows_up_to=260)["read_from"] == "rows"
        # end users are not in the rollups: that report reads the rows whatever the window
        assert cost_report(conn, "user", scope, rows_up_to=0)["read_from"] == "rows"


def test_rollups_counted_before_the_ttft_histogram(store: Store, data: Data) -> None:
    """Rows counted before migration 0015 hold no time-to-first-token histogram: the median is unknown (not a
    wrong number) while the sample count stays right."""
    with store.begin() as conn:
        conn.execute(update(trace_rollups).values({f"ttft_{i:02d}": 0 for i in range(12)}))
    rows, rolled, _ = _both(store, "model", ReportScope((data.project,), BASE - 60.0))
    assert rows["total"]["ttft_ms"]["p50"] is not None and rolled["total"]["ttft_ms"]["p50"] is None
    assert rolled["total"]["ttft_ms"]["samples"] == rows["total"]["ttft_ms"]["samples"] > 0
