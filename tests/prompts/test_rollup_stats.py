"""Prompt stats read from the rollups equal the ones read from the rows, on SQLite and PostgreSQL: per version
and UTC day, calls, errors, caller mistakes, error rates, token means, cost, latency means and score means are
the same over windows with ragged edges that cross a day boundary; latency percentiles are within one histogram
bucket; a label's versions and the read source are honoured."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import select

from pilothouse.prompts.rollout.performance import prompt_performance, prompt_stats
from pilothouse.store.engine import Store
from pilothouse.store.migrate import alembic_config
from pilothouse.store.rollups import rebuild as rebuild_rollups
from pilothouse.store.score_rollups import rebuild as rebuild_scores
from pilothouse.store.scores import add_score
from pilothouse.store.tables import prompt_score_rollups, trace_rollups
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.costs.histogram_bounds import check_estimate
from tests.prompts.test_monitor import PROMPT, setup_prompt

MIDNIGHT = dt.datetime(2025, 3, 2, tzinfo=dt.UTC).timestamp()
START = MIDNIGHT - 2 * 3600 - 17.25  # two hours before a UTC day boundary, not on a minute
SPREAD_S = 30 * 3600.0  # holds the whole UTC day after MIDNIGHT: the day rows are read


def _trace(rng: random.Random, project: str, started: float) -> tuple[TraceRecord, str]:
    """A call of the prompt: ok, a version failure, or a caller mistake (a 422 refusal)."""
    trace = TraceRecord(project_id=project, name="chat", started_at=started, model="fake-chat")
    trace.prompt_name = PROMPT if rng.random() < 0.9 else "another-prompt"
    trace.prompt_version = rng.choice([1, 2])
    kind = rng.choices(["ok", "error", "caller"], [0.8, 0.1, 0.1])[0]
    duration_ms = rng.lognormvariate(5.5, 1.2)
    span = trace.span("llm", "chat")
    span.started_at = started
    span.input_tokens, span.output_tokens = rng.randint(1, 400), rng.randint(0, 200)
    if kind == "caller":
        span.attributes.update({"http.response.status_code": 422, "error.type": "missing_variable"})
    elif kind == "error":
        span.attributes.update({"http.response.status_code": 502, "error.type": "upstream_error"})
    span.finish(status="ok" if kind == "ok" else "error", error=None if kind == "ok" else "refused")
    span.latency_ms = duration_ms
    span.cost_usd = None if kind == "caller" else Decimal(rng.randint(0, 10**8)) / Decimal(10**12)
    trace.finish()
    trace.status = "ok" if kind == "ok" else "error"
    trace.ended_at = started + duration_ms / 1000.0
    return trace, kind


@dataclass
class Data:
    project: str
    calls: list[tuple[TraceRecord, str]]


@pytest.fixture
def data(store: Store, tmp_path: Path) -> Data:
    rng = random.Random(29)
    calls: list[tuple[TraceRecord, str]] = []
    project_id = setup_prompt(store)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    scored: list[str] = []
    for _ in range(800):
        trace, kind = _trace(rng, project_id, START + rng.random() * SPREAD_S)
        calls.append((trace, kind))
        if rng.random() < 0.4:
            scored.append(trace.id)

    async def write_all() -> None:  # submitted together: the sink stores them in a few batches
        await asyncio.gather(*(sink.write(trace) for trace, _ in calls))

    try:
        asyncio.run(write_all())
    finally:
        sink.close()
    with store.begin() as conn:
        for trace_id in scored:
            add_score(conn, project_id=project_id, trace_id=trace_id, name="helpful", value=float(rng.random() < 0.7))
            if rng.random() < 0.3:  # rated twice: the trace counts once, with its mean
                add_score(conn, project_id=project_id, trace_id=trace_id, name="helpful", value=0.0)
            if rng.random() < 0.2:
                add_score(conn, project_id=project_id, trace_id=trace_id, name="groundedness", value=rng.random())
    return Data(project_id, calls)


def _same(rows: dict[str, Any], rolled: dict[str, Any], latencies: list[float]) -> None:
    """Everything equal but the latency percentiles (histogram estimates) and score means (float sums in SQL)."""

    def plain(b: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in b.items() if k not in ("latency_ms", "scores")}
        out["latency_mean"] = b["latency_ms"]["mean"]
        out["score_n"] = {name: s["n"] for name, s in b["scores"].items()}
        return out

    assert plain(rolled) == plain(rows)
    for name, s in rows["scores"].items():
        assert rolled["scores"][name]["mean"] == pytest.approx(s["mean"], abs=2e-6)
    for q in (50, 95):
        check_estimate(latencies, q, rolled["latency_ms"][f"p{q}"])
        assert rows["latency_ms"][f"p{q}"] == (
            None if not latencies else pytest.approx(np.percentile(latencies, q), abs=1e-3)
        )


def _latencies(
    calls: list[tuple[TraceRecord, str]], since: float, until: float | None, version: int, day: str | None
) -> list[float]:
    """The exact latencies the stats time: ok calls of the prompt at `version` in the window (and day)."""
    return [
        ((t.ended_at or t.started_at) - t.started_at) * 1000.0
        for t, kind in calls
        if kind == "ok"
        and t.prompt_name == PROMPT
        and t.prompt_version == version
        and since <= t.started_at
        and (until is None or t.started_at < until)
        and (day is None or dt.datetime.fromtimestamp(t.started_at, tz=dt.UTC).strftime("%Y-%m-%d") == day)
    ]


WINDOWS = [
    (START - 10.0, None),  # all of it, open end
    (START + 333.3, MIDNIGHT + 2 * 3600 + 59.5),  # ragged edges across the day boundary
    (MIDNIGHT - 3600.0, MIDNIGHT + 3600.0),  # whole hours
]


def test_rollups_match_rows(store: Store, data: Data) -> None:
    for versions in (None, [2]):
        for since, until in WINDOWS:
            _compare(store, data, since, until, versions)
    _which_source_answers(store, data)


def _compare(store: Store, data: Data, since: float, until: float | None, versions: list[int] | None) -> None:
    project = data.project
    with store.connect() as conn:
        rows = prompt_performance(conn, project, PROMPT, since=since, until=until, versions=versions, rows_up_to=10**9)
        rolled = prompt_performance(conn, project, PROMPT, since=since, until=until, versions=versions, rows_up_to=0)
    assert (rows["read_from"], rolled["read_from"]) == ("rows", "rollups")
    assert [v["version"] for v in rolled["versions"]] == [v["version"] for v in rows["versions"]]
    assert rows["versions"], "the window holds calls"
    for mine, theirs in zip(rows["versions"], rolled["versions"], strict=True):
        version = mine["version"]
        _same(mine["total"], theirs["total"], _latencies(data.calls, since, until, version, None))
        assert [d["day"] for d in theirs["days"]] == [d["day"] for d in mine["days"]]
        for day_rows, day_rolled in zip(mine["days"], theirs["days"], strict=True):
            _same(day_rows, day_rolled, _latencies(data.calls, since, until, version, day_rows["day"]))
    caller = sum(v["total"]["caller_errors"] for v in rows["versions"])
    scores = sum(v["total"]["scores"].get("helpful", {}).get("n", 0) for v in rows["versions"])
    assert caller > 0 and scores > 0  # the data exercises both


def _which_source_answers(store: Store, data: Data) -> None:
    project = data.project
    with store.connect() as conn:
        assert prompt_performance(conn, project, PROMPT, since=START - 10.0)["read_from"] == "rows"
        assert prompt_performance(conn, project, PROMPT, since=START - 10.0, rows_up_to=1)["read_from"] == "rollups"
        assert prompt_stats(conn, project, PROMPT, since=START - 10.0)["read_from"] == "rows"


def _counters(store: Store) -> tuple[dict[tuple[Any, ...], tuple[Any, ...]], dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every rollup row's counters and the score counters, by key (floats rounded)."""
    with store.connect() as conn:
        rollups = {
            tuple(r[:7]): tuple(round(v, 6) if isinstance(v, float) else v for v in r[7:])
            for r in conn.execute(select(trace_rollups).order_by(*trace_rollups.primary_key.columns))
        }
        sums = {
            (r.project_id, r.prompt_name, r.prompt_version, r.bucket_start, r.name): (int(r.traces), round(r.total, 9))
            for r in conn.execute(select(prompt_score_rollups))
            if r.traces
        }
    return rollups, sums


def test_counters_kept_on_write_equal_a_recount_and_the_migration_backfill(store: Store, data: Data) -> None:
    """Caller mistakes and score counters kept as traces and scores are written equal the ones recounted from
    the rows (`rebuild`), and the ones migration 0023 fills in for rows stored before it."""
    kept = _counters(store)
    rollups, sums = kept
    at = list(trace_rollups.c.keys()).index("caller_errors") - 7  # after the seven key columns
    callers = sum(int(row[at]) for key, row in rollups.items() if key[1] == 86_400)
    assert callers == sum(1 for _, kind in data.calls if kind == "caller")
    assert sums, "the fixture's scores were not counted"
    rebuild_rollups(store)
    with store.begin() as conn:
        rebuild_scores(conn)
    assert _counters(store) == kept
    cfg = alembic_config(store.engine)
    command.downgrade(cfg, "0023_rollups_for_prompt_stats-1")
    command.upgrade(cfg, "head")
    assert _counters(store) == kept
