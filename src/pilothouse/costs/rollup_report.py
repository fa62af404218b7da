"""The cost report read from the per-minute and per-hour rollups: what `costs.report.cost_report` answers with
when a window holds more requests than it reads row by row (`ROWS_UP_TO`).

Every count and sum is the same as the row-based report's: requests, errors, tokens, cost (exact pico-dollars),
cache hits and savings, unpriced calls, llm calls and output tokens per second (the window is covered exactly,
see `store.rollup_reads`). What differs is precision and one grouping:
- latency and time-to-first-token percentiles are estimates from histograms (bounds `LATENCY_BOUNDS_MS`: 25, 50,
  100, 250, 500 ms, 1, 2.5, 5, 10, 30, 60 s), linear within the bucket the percentile falls in: a p95 of 700 ms
  is somewhere in (500 ms, 1 s];
- per-model speed is grouped by the trace's model (for gateway calls, the same as the llm span's model);
- grouping by end user (`user`) is not pre-aggregated (too many values): that report always reads the rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from pilothouse.money import from_pico, per_item, usd_string
from pilothouse.store.rollup_reads import grouped_counters, open_end, ttft_percentile
from pilothouse.store.rollups import Counters

__all__ = ["ROLLUP_GROUPS", "rollup_cost_report"]

ROLLUP_GROUPS = ("key", "project", "model", "prompt")
"""The report groupings the rollups hold."""


def _until(conn: Connection, project_ids: tuple[str, ...] | None, until: float | None) -> float:
    return open_end(conn, project_ids) if until is None else until


def _speed(c: Counters) -> float | None:
    ms = c.values["generation_ms"]
    return round(c.values["generated_tokens"] * 1000.0 / ms, 3) if ms > 0 else None


def _ttft(c: Counters) -> dict[str, Any]:
    return {"p50": ttft_percentile(c, 50), "samples": int(c.values["ttft_count"])}


def _stats(c: Counters) -> dict[str, Any]:
    v = c.values
    requests, cost = int(v["requests"]), from_pico(int(v["cost_pico"]))
    return {
        "requests": requests,
        "errors": int(v["errors"]),
        "error_rate": round(v["errors"] / requests, 6) if requests else None,
        "input_tokens": int(v["input_tokens"]),
        "output_tokens": int(v["output_tokens"]),
        "cost_usd": usd_string(cost),
        "cost_per_request_usd": usd_string(per_item(cost, requests)) if requests else None,
        "unpriced_calls": int(v["unpriced_calls"]),
        "cache_hits": int(v["cache_hits"]),
        "cache_saved_usd": usd_string(from_pico(int(v["cache_saved_pico"]))),
        "latency_ms": {q: c.latency_percentile(n) for q, n in (("p50", 50), ("p95", 95), ("p99", 99))},
        "ttft_ms": _ttft(c),
        "llm_calls": int(v["llm_calls"]),
        "output_tokens_per_s": _speed(c),
    }


def rollup_cost_report(
    conn: Connection, by: str, project_ids: tuple[str, ...] | None, since: float, until: float | None
) -> dict[str, Any]:
    """The groups, total and per-model speed of `costs.report.cost_report`, from the rollups (see the module).
    Group names are filled in by the caller."""
    if by not in ROLLUP_GROUPS:
        raise ValueError(f"the rollups cannot group by {by!r}: choose one of {', '.join(ROLLUP_GROUPS)}")
    end = _until(conn, project_ids, until)
    groups: dict[str | None, Counters] = {}
    total, models = Counters(), dict[str | None, Counters]()
    dims = ("model",) if by == "model" else (by, "model")
    for key, counters in grouped_counters(conn, project_ids, since, end, by=dims).items():
        group, model = key[1], key[-1]
        groups.setdefault(group, Counters()).add(counters.values)
        total.add(counters.values)
        models.setdefault(model, Counters()).add(counters.values)
    ordered = sorted(
        ((key, _stats(c)) for key, c in groups.items()),
        key=lambda kv: (-from_pico(int(groups[kv[0]].values["cost_pico"])), -kv[1]["requests"], kv[0] or ""),
    )
    return {
        "groups": ordered,
        "total": _stats(total),
        "models": [
            {
                "model": model,
                "llm_calls": int(c.values["llm_calls"]),
                "ttft_ms": _ttft(c),
                "output_tokens_per_s": _speed(c),
            }
            for model, c in sorted(models.items(), key=lambda kv: kv[0] or "")
            if c.values["llm_calls"]
        ],
    }
