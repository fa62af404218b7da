"""Cost reports on SQLite and PostgreSQL, from fabricated traces with known answers: exact sums, groups,
percentiles, speed, cache savings, unpriced calls, the time window and the project scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilothouse.costs.report import ReportScope, cache_saved, cost_report
from pilothouse.store.engine import Store
from pilothouse.store.keys import create_key
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

BASE = 1_800_000_000.0


@dataclass
class Setup:
    project: str
    other_project: str
    key_a: str
    key_b: str


@pytest.fixture
def sink(store: Store, tmp_path: Path) -> Iterator[StoreSink]:
    s = StoreSink(store, spill_path=tmp_path / "traces-unstored.jsonl")
    yield s
    s.close()


def call(
    project: str,
    key: str | None,
    *,
    started: float,
    duration_ms: float,
    model: str | None = "big",
    cost: str | None = "0",
    tokens: tuple[int, int] = (0, 0),
    status: str = "ok",
    user: str | None = None,
    prompt: str | None = None,
    ttft_ms: float | None = None,
    llm: bool = True,
    cache_attrs: dict[str, Any] | None = None,
) -> TraceRecord:
    """One gateway call as the server records it: an llm span (or only a cache span for a hit)."""
    trace = TraceRecord(project_id=project, name="chat", api_key_id=key, started_at=started, model=model, user_id=user)
    trace.prompt_name = prompt
    if cache_attrs is not None:
        cache = trace.span("cache", "cache lookup")
        cache.started_at = started
        cache.attributes.update(cache_attrs)
        cache.finish()
    if llm:
        span = trace.span("llm", f"chat {model}")
        span.started_at, span.model = started, model
        span.input_tokens, span.output_tokens = tokens
        span.cost_usd = None if cost is None else Decimal(cost)
        span.finish(status="error" if status == "error" else "ok", error="boom" if status == "error" else None)
        span.latency_ms, span.ttft_ms = duration_ms, ttft_ms
    trace.finish()
    trace.status = "error" if status == "error" else "ok"
    trace.ended_at = started + duration_ms / 1000.0
    return trace


@pytest.fixture
def setup(store: Store, sink: StoreSink) -> Setup:
    with store.begin() as conn:
        project = create_project(conn, "shop").id
        other = create_project(conn, "lab").id
        key_a = create_key(conn, project_id=project, name="web", role="service", created_by=None)[0].id
        key_b = create_key(conn, project_id=project, name="batch", role="service", created_by=None)[0].id
    records = [
        # model "big", key web, user alice, prompt support: 4 ok calls (2 streamed) and 1 error
        call(
            project,
            key_a,
            started=BASE,
            duration_ms=100,
            cost="1.5",
            tokens=(10, 1),
            user="alice",
            prompt="support",
            ttft_ms=10,
        ),
        call(
            project,
            key_a,
            started=BASE + 1,
            duration_ms=200,
            cost="0.000001000001",
            tokens=(20, 2),
            user="alice",
            prompt="support",
            ttft_ms=30,
        ),
        call(
            project,
            key_a,
            started=BASE + 2,
            duration_ms=300,
            cost="0.25",
            tokens=(30, 3),
            user="alice",
            prompt="support",
        ),
        call(
            project,
            key_a,
            started=BASE + 3,
            duration_ms=400,
            cost="0.000000000001",
            tokens=(40, 4),
            user="alice",
            prompt="support",
        ),
        call(
            project,
            key_a,
            started=BASE + 4,
            duration_ms=50,
            cost="0",
            tokens=(50, 0),
            status="error",
            user="alice",
            prompt="support",
        ),
        # model "small", key batch, no user or prompt: 2 priced calls, 1 unpriced, 1 cache hit, 1 cache miss
        call(project, key_b, started=BASE + 5, duration_ms=10, model="small", cost="0.1", tokens=(5, 50)),
        call(
            project,
            key_b,
            started=BASE + 6,
            duration_ms=20,
            model="small",
            cost="0.1",
            tokens=(5, 50),
            cache_attrs={"pilothouse.cache.hit": False},
        ),
        call(project, key_b, started=BASE + 7, duration_ms=30, model="small", cost=None, tokens=(5, 100)),
        call(
            project,
            key_b,
            started=BASE + 8,
            duration_ms=2,
            model="small",
            llm=False,
            cache_attrs={"pilothouse.cache_saved_usd": "0.100000000003"},
        ),
        # outside the window, and another project
        call(project, key_a, started=BASE - 3600, duration_ms=100, cost="7", tokens=(1, 1)),
        call(other, None, started=BASE, duration_ms=100, cost="100", tokens=(1, 1)),
    ]
    for record in records:
        sink.write_sync(record)
    return Setup(project, other, key_a, key_b)


def report(store: Store, by: str, scope: ReportScope) -> dict[str, Any]:
    with store.connect() as conn:
        return cost_report(conn, by, scope)


def groups(result: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {g["group"]: g for g in result["groups"]}


def test_report_by_model(store: Store, setup: Setup) -> None:
    result = report(store, "model", ReportScope((setup.project,), BASE))
    assert result["by"] == "model" and result["since"] == BASE and result["projects"] == [setup.project]
    assert [g["group"] for g in result["groups"]] == ["big", "small"]  # most expensive first
    big, small = result["groups"]

    assert big["requests"] == 5 and big["errors"] == 1 and big["error_rate"] == 0.2
    assert big["input_tokens"] == 150 and big["output_tokens"] == 10
    assert big["cost_usd"] == "1.750001000002"  # exact to the pico-dollar
    assert big["cost_per_request_usd"] == "0.3500002"  # 0.3500002000004 rounded to the pico-dollar
    # latency over successful calls: 100, 200, 300, 400 ms (linear interpolation)
    assert big["latency_ms"] == {
        "p50": pytest.approx(250, abs=0.01),
        "p95": pytest.approx(385, abs=0.01),
        "p99": pytest.approx(397, abs=0.01),
    }
    assert big["ttft_ms"] == {"p50": 20.0, "samples": 2}
    # generation time: (100-10) + (200-30) + 300 + 400 = 960 ms for 10 tokens
    assert big["output_tokens_per_s"] == pytest.approx(10 / 0.96, abs=1e-3)
    assert big["llm_calls"] == 5 and big["unpriced_calls"] == 0
    assert big["cache_hits"] == 0 and big["cache_saved_usd"] == "0"

    assert small["requests"] == 4 and small["errors"] == 0
    assert small["input_tokens"] == 15 and small["output_tokens"] == 200
    assert small["cost_usd"] == "0.2" and small["unpriced_calls"] == 1
    assert small["cache_hits"] == 1 and small["cache_saved_usd"] == "0.100000000003"
    assert small["ttft_ms"] == {"p50": None, "samples": 0}
    assert small["output_tokens_per_s"] == pytest.approx(200 / 0.06, abs=1e-3)

    total = result["total"]
    assert total["requests"] == 9 and total["errors"] == 1
    assert total["cost_usd"] == "1.950001000002"
    assert total["cache_saved_usd"] == "0.100000000003" and total["unpriced_calls"] == 1
    assert total["latency_ms"]["p50"] == pytest.approx(65, abs=0.01)  # 2, 10, 20, 30 | 100, 200, 300, 400
    assert [m["model"] for m in result["models"]] == ["big", "small"]
    assert result["models"][0]["ttft_ms"]["p50"] == 20.0


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("key", {"key_a": (5, "1.750001000002"), "key_b": (4, "0.2")}),
        ("user", {"alice": (5, "1.750001000002"), None: (4, "0.2")}),
        ("prompt", {"support": (5, "1.750001000002"), None: (4, "0.2")}),
        ("project", {"project": (9, "1.950001000002")}),
    ],
)
def test_report_groups(store: Store, setup: Setup, by: str, expected: dict[Any, tuple[int, str]]) -> None:
    ids = {"key_a": setup.key_a, "key_b": setup.key_b, "project": setup.project}
    result = groups(report(store, by, ReportScope((setup.project,), BASE)))
    assert {g: (r["requests"], r["cost_usd"]) for g, r in result.items()} == {
        ids.get(k, k): v for k, v in expected.items()
    }


def test_keys_and_projects_are_named(store: Store, setup: Setup) -> None:
    by_key = groups(report(store, "key", ReportScope((setup.project,), BASE)))
    assert by_key[setup.key_a]["name"] == "web" and by_key[setup.key_b]["name"] == "batch"
    everything = report(store, "project", ReportScope(None, BASE))
    assert everything["projects"] is None
    assert [(g["name"], g["requests"], g["cost_usd"]) for g in everything["groups"]] == [
        ("lab", 1, "100"),
        ("shop", 9, "1.950001000002"),
    ]


def test_time_window(store: Store, setup: Setup) -> None:
    early = report(store, "model", ReportScope((setup.project,), BASE - 7200, BASE))
    assert [(g["group"], g["requests"], g["cost_usd"]) for g in early["groups"]] == [("big", 1, "7")]
    late = report(store, "model", ReportScope((setup.project,), BASE + 3, BASE + 5))  # [since, until)
    assert [(g["group"], g["requests"]) for g in late["groups"]] == [("big", 2)]
    assert late["groups"][0]["errors"] == 1
    empty = report(store, "model", ReportScope((setup.project,), BASE + 3600))
    assert empty["groups"] == [] and empty["total"]["requests"] == 0
    assert empty["total"]["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert empty["total"]["error_rate"] is None and empty["total"]["cost_per_request_usd"] is None


def test_unknown_grouping_is_refused(store: Store) -> None:
    with store.connect() as conn, pytest.raises(ValueError, match="key, project, model, user, prompt"):
        cost_report(conn, "team", ReportScope(None, 0.0))


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"pilothouse.cache_saved_usd": "0.000012"}, Decimal("0.000012")),
        ({"pilothouse.cache_saved_usd": 2}, Decimal(2)),
        ({"pilothouse.cache_saved_usd": 0.5}, Decimal("0.5")),
        ({"pilothouse.cache_saved_usd": True}, None),
        ({"pilothouse.cache_saved_usd": "lots"}, None),
        ({"pilothouse.cache_saved_usd": "NaN"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_cache_saved_attribute(attributes: Any, expected: Decimal | None) -> None:
    assert cache_saved(attributes) == expected
