"""Charts of a prompt's performance per version over time, from what GET /api/prompts/{name}/stats answers.

One line per version, one point per UTC day: requests, cost, latency p95, error rate, and each score's mean.
A window whose calls all fall on one day has no line to draw: it is shown as one bar per version instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pilothouse.ui.charts import Chart, Series, bar_chart, line_chart

Pick = Callable[[dict[str, Any]], float | None]


def _epoch(day: str) -> float:
    return dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _series(versions: list[dict[str, Any]], pick: Pick) -> list[Series]:
    out = []
    for v in sorted(versions, key=lambda v: int(v["version"])):
        points = [(_epoch(str(d["day"])), pick(d)) for d in v.get("days") or []]
        out.append(Series(f"v{v['version']}", points))
    return out


def _score(name: str) -> Pick:
    def pick(day: dict[str, Any]) -> float | None:
        score = (day.get("scores") or {}).get(name)
        return None if not score else _float(score.get("mean"))

    return pick


def _bars(versions: list[dict[str, Any]], title: str, pick: Pick, unit: str = "") -> Chart:
    ordered = sorted(versions, key=lambda v: int(v["version"]))
    bars = [(f"v{v['version']}", value) for v in ordered if (value := pick(v.get("total") or {})) is not None]
    return bar_chart(title, bars, unit=unit)


def _per_version(versions: list[dict[str, Any]], names: list[str]) -> list[Chart]:
    charts = [
        _bars(versions, "Requests per version", lambda t: _float(t.get("calls"))),
        _bars(versions, "Cost per version", lambda t: _float(t.get("cost_total_usd")), "$"),
        _bars(
            versions, "Latency p95 (successful calls)", lambda t: _float((t.get("latency_ms") or {}).get("p95")), " ms"
        ),
        _bars(versions, "Error rate", lambda t: _float(t.get("error_rate")), "%"),
    ]
    charts.extend(_bars(versions, f"Score '{name}' (mean)", _score(name)) for name in names)
    return charts


def stats_charts(stats: dict[str, Any]) -> list[Chart]:
    """The charts for one prompt's stats (an empty list when no version had calls in the window)."""
    versions: list[dict[str, Any]] = stats.get("versions") or []
    if not versions:
        return []
    names = sorted({name for v in versions for name in (v.get("total") or {}).get("scores") or {}})
    if len({d["day"] for v in versions for d in v.get("days") or []}) < 2:
        return _per_version(versions, names)
    charts = [
        line_chart("Requests per day", _series(versions, lambda d: _float(d.get("calls")))),
        line_chart("Cost per day", _series(versions, lambda d: _float(d.get("cost_total_usd"))), unit="$"),
        line_chart(
            "Latency p95 (successful calls)",
            _series(versions, lambda d: _float((d.get("latency_ms") or {}).get("p95"))),
            unit=" ms",
        ),
        line_chart("Error rate", _series(versions, lambda d: _float(d.get("error_rate"))), unit="%"),
    ]
    charts.extend(line_chart(f"Score '{name}' (mean)", _series(versions, _score(name))) for name in names)
    return charts
