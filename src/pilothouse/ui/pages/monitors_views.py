"""What the Monitors pages show, read through the functions the `/api/monitors` routes call: `read_series` (the
series route), `list_rules`/`get_rule` (rules), `list_alerts` (alerts), `list_sampling_rules` (online
evaluation) and `check_drift` (a rule's drift).

A chart is a metric's series over a time range (`RANGES`: the window and the bucket it is read in), drawn with
its baseline as a reference line and the alerts' change points, openings and resolutions as markers. A rule's
baseline is the one its latest alert was raised against, else the level of the chart's buckets before the
rule's monitoring window (the detector's own `baseline_of`); an input-drift rule's references are no drift
(AUC 0.5) and the AUC it alerts at. Blocking store reads: pages call these in a thread.

Charts read `read_series(source="auto")`: a window of whole buckets (its end rounded up to the next bucket) is
read from the trace rollups where they carry the metric and scope (error rate, cost, latency; not tags, scores
or drift), else from the rows; each chart says which (`source_label`). Alert rules are evaluated on the rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.monitors.alerts import Alert, list_alerts
from pilothouse.monitors.detect import DetectorSettings, baseline_of
from pilothouse.monitors.drift import check_drift
from pilothouse.monitors.drift_settings import DriftSettings
from pilothouse.monitors.online_eval import SamplingRule, list_sampling_rules
from pilothouse.monitors.rules import AlertRule, get_rule, list_rules
from pilothouse.monitors.series import METRICS, Bucket, Scope, Series, read_series
from pilothouse.principal import Principal
from pilothouse.store.engine import Store
from pilothouse.ui.charts import Chart, Marker, line_chart
from pilothouse.ui.charts import Series as ChartSeries

RANGES: dict[str, tuple[float, float]] = {
    "1h": (3600.0, 60.0),
    "24h": (86_400.0, 3600.0),
    "7d": (7 * 86_400.0, 6 * 3600.0),
    "30d": (30 * 86_400.0, 86_400.0),
}
"""A chart's time range: (window, bucket) in seconds."""
MAX_RULE_CHARTS = 6
"""Rules charted on the monitors page (each chart is a series query); the rest on their own pages."""
ALERTS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: AlertRule
    firing: Alert | None
    """The rule's open episode, if any."""


@dataclass(frozen=True, slots=True)
class RuleChart:
    rule: AlertRule
    chart: Chart
    baseline: float | None
    baseline_from: str
    source: str = ""
    """Where the chart's values come from, when not the trace rows (`source_label`)."""


@dataclass(frozen=True, slots=True)
class Overview:
    rules: list[RuleView]
    charts: list[RuleChart]
    alerts: list[Alert]
    online: list[SamplingRule]
    range: str


@dataclass(frozen=True, slots=True)
class RuleDetail:
    rule: AlertRule
    chart: RuleChart
    alerts: list[Alert]
    drift: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SeriesView:
    metric: str
    description: str
    chart: Chart
    series: list[Series] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    source: str = ""
    """Where the chart's values come from, when not the trace rows (`source_label`)."""


def chart_unit(metric: str) -> str:
    """The `line_chart` unit of a metric: rates as percentages, cost in dollars, latency in ms."""
    info = METRICS[metric]
    if info.kind == "rate":
        return "%"
    return {"usd": "$", "ms": " ms"}.get(info.unit, "")


def format_value(metric: str, value: float | int | None) -> str:
    """A value of `metric` as the charts write it (a rate as a percentage, cost in dollars, latency in ms)."""
    if value is None or metric not in METRICS:
        return "\u2013" if value is None else f"{value:.4g}"
    unit = chart_unit(metric)
    if unit == "%":
        return f"{100 * float(value):.2f}%"
    if unit == "$":
        return f"${float(value):,.6f}"
    if unit == " ms":
        return f"{float(value):,.1f} ms"
    return f"{float(value):.4g}"


def seconds_label(seconds: float) -> str:
    """A detector duration as people write it: `90s`, `5m`, `1h`, `7d`, `1h 30m`."""
    whole = round(seconds)
    parts = []
    for size, suffix in ((86_400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if whole >= size:
            parts.append(f"{whole // size}{suffix}")
            whole %= size
    return " ".join(parts[:2]) or "0s"


def evidence_brief(evidence: dict[str, Any]) -> dict[str, Any]:
    """An alert's evidence without its long per-bucket lists (the series and the CUSUM path)."""
    return {k: v for k, v in evidence.items() if k not in ("series", "cusum")}


def window_of(range_name: str, now: float) -> tuple[float, float, float]:
    """(start, end, bucket) of a named range: whole buckets, the start aligned as the series route aligns it and
    the end `now` rounded up to the next bucket boundary (the same buckets; readable from the rollups)."""
    if range_name not in RANGES:
        raise InvalidRequest(f"range must be one of {', '.join(RANGES)}, got {range_name!r}", param="range")
    window_s, bucket_s = RANGES[range_name]
    return (now - window_s) // bucket_s * bucket_s, math.ceil(now / bucket_s) * bucket_s, bucket_s


def source_label(found: list[Series]) -> str:
    """How a chart says where its values come from: "" for the trace rows."""
    if not any(s.source == "rollups" for s in found):
        return ""
    if any(s.estimated for s in found):
        return "from the rollups (estimates: latency of successful traces, percentiles from a histogram)"
    return "from the rollups"


def _points(buckets: list[Bucket]) -> list[tuple[float, float | None]]:
    return [(b.start, b.value) for b in buckets]


def alert_markers(alerts: list[Alert], start: float, end: float) -> list[Marker]:
    """Each alert's change point, opening and resolution within [start, end]."""
    out: list[Marker] = []
    for alert in alerts:
        change = alert.evidence.get("change_at")
        if isinstance(change, int | float):
            out.append(Marker(float(change), f"change point ({alert.rule_name})"))
        out.append(Marker(alert.opened_at, f"alert opened ({alert.rule_name})"))
        if alert.resolved_at is not None:
            out.append(Marker(alert.resolved_at, f"alert resolved ({alert.rule_name})"))
    return [m for m in out if start <= m.x <= end]


def _baseline(rule: AlertRule, alerts: list[Alert], buckets: list[Bucket], end: float) -> tuple[float | None, str]:
    for alert in alerts:  # newest first
        base = alert.evidence.get("baseline")
        if isinstance(base, dict) and isinstance(base.get("mean"), int | float):
            return float(base["mean"]), f"baseline of alert {alert.id}"
    if isinstance(rule.detector, DetectorSettings):
        before = [b for b in buckets if b.start + rule.detector.bucket_s <= end - rule.detector.window_s]
        found = baseline_of(METRICS[rule.metric].kind, before)
        if found is not None:
            return found.mean, "baseline: before the monitoring window"
    return None, ""


def _rule_chart(store: Store, rule: AlertRule, alerts: list[Alert], range_name: str, now: float) -> RuleChart:
    start, end, bucket_s = window_of(range_name, now)
    with store.connect() as conn:
        found = read_series(
            conn,
            rule.project_id,
            rule.metric,
            start=start,
            end=end,
            bucket_s=bucket_s,
            scope=rule.scope,
            source="auto",
        )
    buckets = found[0].buckets if found else []
    references: list[tuple[str, float]] = []
    baseline, where = _baseline(rule, alerts, buckets, now)
    if isinstance(rule.detector, DriftSettings):
        references = [("no drift (AUC 0.5)", 0.5), (f"alerts at AUC {rule.detector.min_auc}", rule.detector.min_auc)]
        baseline, where = 0.5, "no drift"
    elif baseline is not None:
        references = [("baseline", baseline)]
    chart = line_chart(
        f"{rule.name}: {rule.metric} (last {range_name})",
        [ChartSeries(rule.metric, _points(buckets))],
        unit=chart_unit(rule.metric),
        references=references,
        markers=alert_markers(alerts, start, end),
    )
    return RuleChart(rule, chart, baseline, where, source_label(found))


def overview(store: Store, principal: Principal, range_name: str, *, now: float | None = None) -> Overview:
    """The monitors page: rules with their state, charts of the first rules, recent alerts, online evaluation."""
    at = time.time() if now is None else now
    window_of(range_name, at)  # a bad range is refused before any read
    with store.connect() as conn:
        rules = list_rules(conn, principal.project_id)
        alerts = list_alerts(conn, principal.project_id, limit=ALERTS_SHOWN)
        firing = {a.rule_name: a for a in list_alerts(conn, principal.project_id, firing=True, limit=1000)}
        online = list_sampling_rules(conn, principal.project_id)
    charts = []
    for rule in rules[:MAX_RULE_CHARTS]:
        mine = [a for a in alerts if a.rule_id == rule.id]
        charts.append(_rule_chart(store, rule, mine, range_name, at))
    return Overview([RuleView(r, firing.get(r.name)) for r in rules], charts, alerts, online, range_name)


def recent_alerts(
    store: Store, principal: Principal, *, rule: str | None = None, status: str | None = None
) -> list[Alert]:
    """The alert list (the live view's fragment), newest first."""
    firing = None if status is None else status == "firing"
    with store.connect() as conn:
        return list_alerts(conn, principal.project_id, rule=rule, firing=firing, limit=ALERTS_SHOWN)


def rule_detail(
    store: Store, principal: Principal, name: str, range_name: str, *, now: float | None = None
) -> RuleDetail:
    """One rule: its chart, its alert history and, for an input-drift rule, the drift comparison now."""
    at = time.time() if now is None else now
    window_of(range_name, at)
    with store.connect() as conn:
        rule = get_rule(conn, principal.project_id, name)
        if rule is None:
            raise NotFound(f"no monitor rule {name!r} in this project", param="name")
        alerts = list_alerts(conn, principal.project_id, rule=name, limit=ALERTS_SHOWN)
        drift = None
        if isinstance(rule.detector, DriftSettings):
            found = check_drift(conn, rule.project_id, rule.scope, rule.detector, at, cache_key=rule.id)
            drift = {"rule": rule.name, "scope": rule.scope.to_dict(), **found.evidence()}
    alerts = [a for a in alerts if a.rule_id == rule.id]  # not an older rule's episodes under the same name
    return RuleDetail(rule, _rule_chart(store, rule, alerts, range_name, at), alerts, drift)


def series_view(
    store: Store,
    principal: Principal,
    metric: str,
    range_name: str,
    scope: Scope,
    by: str | None,
    *,
    now: float | None = None,
) -> SeriesView:
    """Any metric the series route supports over a range, filtered and grouped as it filters and groups; its
    alerts' change points as markers and the range's pooled mean as the reference."""
    if metric not in METRICS:
        raise InvalidRequest(f"unknown metric {metric!r}; one of {', '.join(METRICS)}", param="metric")
    at = time.time() if now is None else now
    start, end, bucket_s = window_of(range_name, at)
    try:
        with store.connect() as conn:
            found = read_series(
                conn,
                principal.project_id,
                metric,
                start=start,
                end=end,
                bucket_s=bucket_s,
                scope=scope,
                by=by,
                source="auto",
            )
            alerts = [a for a in list_alerts(conn, principal.project_id, limit=200) if a.metric == metric]
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="by") from exc
    references: list[tuple[str, float]] = []
    if METRICS[metric].kind in ("rate", "mean"):
        n = sum(b.n for s in found for b in s.buckets)
        if n:
            references = [("mean over the range", sum(b.total for s in found for b in s.buckets) / n)]
    chart = line_chart(
        f"{metric} (last {range_name})",
        [ChartSeries(s.group or metric, _points(s.buckets)) for s in found],
        unit=chart_unit(metric),
        references=references,
        markers=alert_markers(alerts, start, end),
    )
    return SeriesView(metric, METRICS[metric].description, chart, found, alerts, source_label(found))
