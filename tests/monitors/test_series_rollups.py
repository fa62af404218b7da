"""Monitor series read from the trace rollups equal the ones read from the rows, on SQLite and PostgreSQL.

Traces go through the real writer (`StoreSink`, which keeps the rollups in the same transaction) over two UTC days
and a bit, at ragged times, with errors, costs, latencies across the whole histogram, models, prompt versions
and tags. Rates and means read from the rollups equal the rows' (the same counts, sums to float tolerance);
latency is of the successful traces and its percentiles lie within the histogram bucket of the exact ones;
what the rollups do not carry is refused (`source="rollups"`) or read from the rows (`source="auto"`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from pilothouse.monitors.series import Scope, Series, read_series
from pilothouse.principal import Principal
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from pilothouse.ui.pages.monitors_views import series_view, window_of
from tests.costs.histogram_bounds import check_estimate

DAY, HOUR = 86_400.0, 3600.0
START = 1_800_000_000.0 // DAY * DAY  # a UTC midnight
END = START + 2 * DAY
MODELS = ("big", "small", "tiny")
PROMPTS = (("support", 1), ("support", 2), ("triage", 1), (None, None))


@dataclass
class Data:
    project: str
    traces: list[TraceRecord]


def _trace(rng: random.Random, project: str, started: float) -> TraceRecord:
    model = rng.choice(MODELS)
    trace = TraceRecord(project_id=project, name="chat", started_at=started, model=model)
    trace.prompt_name, trace.prompt_version = rng.choice(PROMPTS)
    trace.tags = ["beta"] if rng.random() < 0.3 else None
    failed = model != "small" and rng.random() < 0.2  # "small" never fails: its latency is comparable to the rows'
    duration_ms = rng.lognormvariate(5.5, 1.5)  # 5 ms to tens of seconds: every histogram bucket
    span = trace.span("llm", f"chat {model}")
    span.started_at, span.model = started, model
    span.cost_usd = Decimal(rng.randint(0, 10**10)) / Decimal(10**12)
    span.finish(status="error" if failed else "ok", error="boom" if failed else None)
    trace.finish()
    trace.status = "error" if failed else "ok"
    trace.ended_at = started + duration_ms / 1000.0
    return trace


@pytest.fixture
def data(store: Store, tmp_path: Path) -> Iterator[Data]:
    rng = random.Random(5)
    with store.begin() as conn:
        project = create_project(conn, "shop").id
        other = create_project(conn, "lab").id
    # some before START and at or after END: a window of whole grains must leave them out
    times = [START - 2 * HOUR + rng.random() * (END - START + 4 * HOUR) for _ in range(400)]
    traces = [_trace(rng, project, t) for t in times]
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        for trace in [*traces, *(_trace(rng, other, t) for t in times[:40])]:
            sink.write_sync(trace)
    finally:
        sink.close()
    yield Data(project, traces)


def _read(store: Store, project: str, metric: str, source: str, **kw: object) -> list[Series]:
    args: dict[str, object] = {"start": START, "end": END, "bucket_s": 6 * HOUR} | kw
    with store.connect() as conn:
        return read_series(conn, project, metric, source=source, **args)  # type: ignore[arg-type]


def _same(rows: list[Series], rolled: list[Series]) -> None:
    assert [s.group for s in rolled] == [s.group for s in rows]
    for r, o in zip(rows, rolled, strict=True):
        assert (r.source, o.source) == ("rows", "rollups")
        assert [b.start for b in o.buckets] == [b.start for b in r.buckets]
        assert [b.n for b in o.buckets] == [b.n for b in r.buckets]
        for rb, ob in zip(r.buckets, o.buckets, strict=True):
            assert ob.total == pytest.approx(rb.total, rel=1e-9, abs=1e-12)
            assert (ob.value is None) == (rb.value is None)
            if rb.value is not None:
                assert ob.value == pytest.approx(rb.value, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bucket_s", [DAY, 6 * HOUR, HOUR, 60.0])
@pytest.mark.parametrize("metric", ["error_rate", "cost_per_request"])
def test_rates_and_means_equal_the_rows(store: Store, data: Data, metric: str, bucket_s: float) -> None:
    rows = _read(store, data.project, metric, "rows", bucket_s=bucket_s)
    rolled = _read(store, data.project, metric, "rollups", bucket_s=bucket_s)
    _same(rows, rolled)
    assert sum(b.n for b in rolled[0].buckets) == sum(START <= t.started_at < END for t in data.traces)
    assert not rolled[0].estimated
    if metric == "error_rate":  # 0/1 units: the sum of squares is the events
        assert all(b.total_sq == b.total for b in rolled[0].buckets)
    else:  # no sum of squares in the rollups: a mean's buckets read as variance 0
        assert all(b.variance == pytest.approx(0.0, abs=1e-9) for b in rolled[0].buckets)


@pytest.mark.parametrize("by", ["model", "prompt", "prompt_version"])
def test_grouped_and_scoped_series_equal_the_rows(store: Store, data: Data, by: str) -> None:
    for metric in ("error_rate", "cost_per_request"):
        _same(
            _read(store, data.project, metric, "rows", by=by),
            _read(store, data.project, metric, "rollups", by=by),
        )
    for scope in (Scope(model="big"), Scope(prompt="support"), Scope(prompt="support", prompt_version=2)):
        _same(
            _read(store, data.project, "error_rate", "rows", scope=scope, by=by),
            _read(store, data.project, "error_rate", "rollups", scope=scope, by=by),
        )
    groups = [s.group for s in _read(store, data.project, "error_rate", "rollups", by=by)]
    assert None not in groups and "" not in groups and groups


def test_latency_is_of_successful_traces(store: Store, data: Data) -> None:
    scope = Scope(model="small")  # no failures: rows and rollups count the same traces
    _same(
        _read(store, data.project, "latency_mean", "rows", scope=scope),
        _read(store, data.project, "latency_mean", "rollups", scope=scope),
    )
    mean = _read(store, data.project, "latency_mean", "rollups")[0]
    assert mean.estimated and mean.source == "rollups"
    for bucket in mean.buckets:  # every model: failed traces are left out of the rollups' latency
        ok = [
            (t.ended_at - t.started_at) * 1000.0
            for t in data.traces
            if t.status == "ok" and t.ended_at is not None and bucket.start <= t.started_at < bucket.start + 6 * HOUR
        ]
        assert bucket.n == len(ok)
        assert bucket.value == pytest.approx(sum(ok) / len(ok), rel=1e-9)


@pytest.mark.parametrize("q", [50, 95, 99])
def test_latency_percentiles_lie_in_the_histogram_bucket(store: Store, data: Data, q: int) -> None:
    found = _read(store, data.project, f"latency_p{q}", "rollups", bucket_s=DAY)[0]
    assert found.estimated and len(found.buckets) == 2
    for bucket in found.buckets:
        ok = [
            (t.ended_at - t.started_at) * 1000.0
            for t in data.traces
            if t.status == "ok" and t.ended_at is not None and bucket.start <= t.started_at < bucket.start + DAY
        ]
        assert bucket.n == len(ok) > 0
        check_estimate(ok, q, bucket.value)


def test_what_the_rollups_do_not_carry(store: Store, data: Data) -> None:
    refused: list[tuple[str, dict[str, object]]] = [
        ("hallucination_rate", {}),  # a score metric
        ("guard_block_rate", {}),  # the rollups count blocking guard spans, not traces with a guard in error
        ("cache_hit_rate", {}),  # the rollups count cache spans with a saving, not traces with a cache span
        ("error_rate", {"scope": Scope(tag="beta")}),
        ("error_rate", {"by": "tag"}),
        ("error_rate", {"start": START + 30.0}),  # not whole minutes
        ("error_rate", {"end": END - 1.0}),
        ("error_rate", {"bucket_s": 90.0}),
    ]
    for metric, kw in refused:
        with pytest.raises(ValueError, match="cannot be read from the rollups"):
            _read(store, data.project, metric, "rollups", **kw)
        # "auto" reads the rows instead, exactly as source="rows" does
        auto = _read(store, data.project, metric, "auto", **kw)
        assert auto == _read(store, data.project, metric, "rows", **kw)
        assert all(s.source == "rows" and not s.estimated for s in auto)
    auto = _read(store, data.project, "error_rate", "auto")
    assert [s.source for s in auto] == ["rollups"]
    assert auto[0].to_dict()["source"] == "rollups"
    assert "source" not in _read(store, data.project, "error_rate", "rows")[0].to_dict()
    with pytest.raises(ValueError, match="source must be one of"):
        _read(store, data.project, "error_rate", "everywhere")


def test_an_empty_window_reads_one_empty_series(store: Store, data: Data) -> None:
    later = {"start": END + 10 * DAY, "end": END + 11 * DAY, "bucket_s": HOUR}
    rows = _read(store, data.project, "error_rate", "rows", **later)
    rolled = _read(store, data.project, "error_rate", "rollups", **later)
    _same(rows, rolled)
    assert len(rolled) == 1 and all(b.n == 0 and b.value is None for b in rolled[0].buckets)


def test_the_dashboard_reads_whole_buckets_from_the_rollups_and_says_so(store: Store, data: Data) -> None:
    viewer = Principal("key_viewer", data.project, "viewer")
    now = END - 1234.5  # not on a bucket: the page's window ends at the next bucket boundary
    # the start aligned down as before (a partial bucket at each end), the end up
    assert window_of("7d", now) == (END - 7 * DAY - 6 * HOUR, END, 6 * HOUR)
    found = series_view(store, viewer, "latency_p95", "7d", Scope(), "model", now=now)
    assert {s.source for s in found.series} == {"rollups"} and "estimates" in found.source
    assert sorted(str(s.group) for s in found.series) == sorted(MODELS)
    rates = series_view(store, viewer, "error_rate", "30d", Scope(prompt="support"), None, now=now)
    assert rates.source == "from the rollups"
    with store.connect() as conn:
        rows = read_series(
            conn, data.project, "error_rate", start=END - 31 * DAY, end=END, bucket_s=DAY, scope=Scope(prompt="support")
        )
    _same(rows, rates.series)
    tagged = series_view(store, viewer, "error_rate", "7d", Scope(tag="beta"), None, now=now)
    assert tagged.source == "" and tagged.series[0].source == "rows"
    scored = series_view(store, viewer, "hallucination_rate", "24h", Scope(), None, now=now)
    assert scored.source == "" and scored.series[0].source == "rows"
