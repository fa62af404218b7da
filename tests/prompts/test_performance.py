"""Per-version performance over time on SQLite and PostgreSQL, from fabricated traces and scores with known
answers: calls, error rate, latency p50/p95, mean tokens, cost per call and scores, per version and per day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from pilothouse.money import usd_string
from pilothouse.prompts.rollout.performance import percentile, prompt_performance
from pilothouse.store.engine import Store
from pilothouse.store.scores import add_score
from pilothouse.timewindow import parse_time
from tests.prompts.test_monitor import PROMPT, add_traces, setup_prompt

DAY1 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC).timestamp()
DAY2 = DAY1 + 86400


def test_performance_by_version_and_day(store: Store) -> None:
    project_id = setup_prompt(store)
    v1_day1 = [float(ms) for ms in range(100, 200, 10)]  # 10 ok calls: 100..190 ms
    with store.begin() as conn:
        ok1 = add_traces(conn, project_id, 1, 10, start=DAY1, latency_ms=v1_day1, cost="0.002", tokens=(30, 12))
        add_traces(conn, project_id, 1, 2, start=DAY1 + 60, status="error", latency_ms=5.0, cost="0", tokens=(30, 0))
        ok1b = add_traces(conn, project_id, 1, 4, start=DAY2, latency_ms=[50.0, 60.0, 70.0, 80.0], cost="0.001")
        ok2 = add_traces(conn, project_id, 2, 5, start=DAY2, latency_ms=300.0, cost="0.0000005", tokens=(40, 20))
        add_traces(conn, project_id, 2, 3, start=DAY2, prompt_name="another-prompt")
        add_traces(conn, project_id, 1, 3, start=DAY1 - 86400 * 30)  # before the window
        for trace_id, value in zip(ok1, [1.0, 0.0] * 5, strict=True):
            add_score(conn, project_id=project_id, trace_id=trace_id, name="helpful", value=value)
        add_score(conn, project_id=project_id, trace_id=ok1[0], name="helpful", value=0.0)  # a second rating: mean 0.5
        add_score(conn, project_id=project_id, trace_id=ok1b[0], name="helpful", value=1.0)
        add_score(conn, project_id=project_id, trace_id=ok2[0], name="judge.relevance", value=0.75, source="judge")
        add_score(conn, project_id=project_id, trace_id=ok2[1], name="label", string_value="spam")  # not numeric

    with store.connect() as conn:
        result = prompt_performance(conn, project_id, PROMPT, since=DAY1 - 3600)

    assert result["prompt"] == PROMPT and result["since"] == DAY1 - 3600 and result["until"] is None
    assert [v["version"] for v in result["versions"]] == [2, 1]  # newest first
    v2, v1 = result["versions"]

    total = v1["total"]
    assert total["calls"] == 16 and total["errors"] == 2
    assert total["error_rate"] == pytest.approx(2 / 16)
    ok_latencies = [*v1_day1, 50.0, 60.0, 70.0, 80.0]
    assert total["latency_ms"]["p50"] == pytest.approx(np.percentile(ok_latencies, 50), abs=1e-3)
    assert total["latency_ms"]["p95"] == pytest.approx(np.percentile(ok_latencies, 95), abs=1e-3)
    assert total["input_tokens_mean"] == (30 * 12 + 20 * 4) / 16
    assert total["output_tokens_mean"] == (12 * 10 + 0 * 2 + 10 * 4) / 16
    assert Decimal(total["cost_total_usd"]) == Decimal("0.024")
    assert Decimal(total["cost_per_call_usd"]) == Decimal("0.0015")
    # per-trace means: trace 0 has (1 + 0) / 2, then 0, 1, 0, 1, ... ; plus 1.0 on day 2
    day1_means = [0.5, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert total["scores"] == {"helpful": {"mean": pytest.approx((sum(day1_means) + 1.0) / 11), "n": 11}}

    assert [d["day"] for d in v1["days"]] == ["2025-03-01", "2025-03-02"]
    day1, day2 = v1["days"]
    assert (day1["calls"], day1["errors"], day2["calls"], day2["errors"]) == (12, 2, 4, 0)
    assert day1["latency_ms"]["p50"] == pytest.approx(145.0, abs=1e-3)  # errors are not in the latency
    assert day1["latency_ms"]["p95"] == pytest.approx(185.5, abs=1e-3)
    assert day1["latency_ms"]["mean"] == pytest.approx(145.0, abs=1e-3)
    assert day2["latency_ms"]["p50"] == pytest.approx(65.0, abs=1e-3)
    assert day1["cost_per_call_usd"] == "0.001666666667"  # to the pico-dollar
    assert day1["scores"]["helpful"] == {"mean": pytest.approx(sum(day1_means) / 10), "n": 10}
    assert day2["scores"]["helpful"] == {"mean": 1.0, "n": 1}

    assert v2["total"]["calls"] == 5 and v2["total"]["error_rate"] == 0
    assert v2["total"]["latency_ms"]["p50"] == pytest.approx(300.0, abs=1e-3)
    assert v2["total"]["cost_per_call_usd"] == "0.0000005"
    assert v2["total"]["scores"] == {"judge.relevance": {"mean": 0.75, "n": 1}}


def test_performance_filters(store: Store) -> None:
    project_id = setup_prompt(store)
    with store.begin() as conn:
        add_traces(conn, project_id, 1, 3, start=DAY1)
        add_traces(conn, project_id, 2, 2, start=DAY2)
    with store.connect() as conn:
        only_v2 = prompt_performance(conn, project_id, PROMPT, since=DAY1 - 1, versions=[2])
        first_day = prompt_performance(conn, project_id, PROMPT, since=DAY1 - 1, until=DAY1 + 3600)
        empty = prompt_performance(conn, project_id, PROMPT, since=DAY2 + 86400)
        other_project = prompt_performance(conn, "proj_other", PROMPT, since=0)
    assert [v["version"] for v in only_v2["versions"]] == [2]
    assert [(v["version"], v["total"]["calls"]) for v in first_day["versions"]] == [(1, 3)]
    assert empty["versions"] == [] and other_project["versions"] == []


def test_helpers() -> None:
    now = 1_000_000.0
    assert parse_time("7d", now=now) == now - 7 * 86400
    assert parse_time("24h", now=now) == now - 86400
    assert parse_time(" 30m", now=now) == now - 1800
    assert parse_time("1.5h", now=now) == now - 5400
    assert parse_time("2w", now=now) == now - 14 * 86400
    assert parse_time("90s", now=now) == now - 90
    assert parse_time("1700000000", now=now) == 1_700_000_000.0
    assert parse_time("2025-03-01T10:00:00", now=now) == DAY1
    assert parse_time("2025-03-01T10:00:00Z", now=now) == DAY1
    with pytest.raises(ValueError, match="7d"):
        parse_time("last week", now=now)
    assert percentile([], 50) is None
    assert percentile([1.0], 95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert usd_string(Decimal(0)) == "0"
    assert usd_string(Decimal("0.0015000")) == "0.0015"
    assert usd_string(Decimal("1") / 3) == "0.333333333333"
    assert usd_string(Decimal("12")) == "12"
