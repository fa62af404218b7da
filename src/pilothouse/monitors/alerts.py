"""Alert episodes: evaluate a rule, open an episode once when its detector fires, resolve it when the series
returns, and tell a webhook and the audit log.

An episode is opened in one transaction with its audit event (`monitor.alert.open`, with the evidence: window,
baseline, statistic, threshold, effect and example trace ids), and a unique index on the open rule keeps it to
one open episode per rule however many replicas evaluate. While an episode is open the rule does not fire
again; it resolves (`monitor.alert.resolve`) when the last `resolve_buckets` buckets are back within half the
minimum effect of the baseline the alert was raised against. The next episode's window starts after that.

`input_drift` rules are judged by a two-sample test of input embeddings instead of a CUSUM (monitors/drift.py);
their episodes open, resolve and notify the same way.

Webhooks are POSTed (JSON) by `Notifier` off the evaluation path: a few attempts with a timeout each; the
outcome is kept on the episode (`delivery`) and never blocks or fails an evaluation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pilothouse.audit.chain import append_event
from pilothouse.monitors.detect import DetectorSettings, detect, has_returned
from pilothouse.monitors.drift import check_drift, resolve_level
from pilothouse.monitors.drift_settings import DriftSettings
from pilothouse.monitors.rules import AlertRule
from pilothouse.monitors.series import METRICS, example_traces, read_series
from pilothouse.store.engine import Store
from pilothouse.store.ids import new_id
from pilothouse.store.tables import monitor_alerts

__all__ = ["Alert", "AlertChange", "Notifier", "evaluate_rule", "list_alerts"]

log = logging.getLogger("pilothouse.monitors")
ACTOR = "system:monitors"


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    project_id: str
    rule_id: str
    rule_name: str
    metric: str
    opened_at: float
    resolved_at: float | None
    evidence: dict[str, Any]
    resolution: dict[str, Any] | None
    delivery: dict[str, Any] | None

    @property
    def status(self) -> str:
        return "firing" if self.resolved_at is None else "resolved"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "metric": self.metric,
            "status": self.status,
            "opened_at": self.opened_at,
            "resolved_at": self.resolved_at,
            "evidence": self.evidence,
            "resolution": self.resolution,
            "delivery": self.delivery,
        }


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What an evaluation did: opened or resolved an episode (for the webhook)."""

    event: Literal["opened", "resolved"]
    alert: Alert
    webhook_url: str | None

    def payload(self) -> dict[str, Any]:
        return {"event": f"alert.{self.event}", "alert": self.alert.to_dict()}


def _row(row: Any) -> Alert:
    return Alert(
        row.id,
        row.project_id,
        row.rule_id,
        row.rule_name,
        row.metric,
        row.opened_at,
        row.resolved_at,
        row.evidence,
        row.resolution,
        row.delivery,
    )


def _open_alert(conn: Connection, rule_id: str) -> Alert | None:
    row = conn.execute(select(monitor_alerts).where(monitor_alerts.c.open_rule_id == rule_id)).first()
    return None if row is None else _row(row)


def list_alerts(
    conn: Connection, project_id: str, *, rule: str | None = None, firing: bool | None = None, limit: int = 100
) -> list[Alert]:
    """The project's alert episodes, newest first."""
    query = select(monitor_alerts).where(monitor_alerts.c.project_id == project_id)
    if rule is not None:
        query = query.where(monitor_alerts.c.rule_name == rule)
    if firing is not None:
        query = query.where(
            monitor_alerts.c.resolved_at.is_(None) if firing else monitor_alerts.c.resolved_at.is_not(None)
        )
    rows = conn.execute(query.order_by(monitor_alerts.c.opened_at.desc()).limit(limit))
    return [_row(r) for r in rows]


def _window(rule: AlertRule, now: float) -> tuple[float, float, float]:
    """(baseline start, window start, end) over complete buckets only."""
    s = rule.detector
    assert isinstance(s, DetectorSettings)
    end = math.floor(now / s.bucket_s) * s.bucket_s
    start = end - s.window_buckets * s.bucket_s
    return start - math.ceil(s.baseline_s / s.bucket_s) * s.bucket_s, start, end


def _last_resolved(conn: Connection, rule: AlertRule) -> float | None:
    last = conn.execute(
        select(func.max(monitor_alerts.c.resolved_at)).where(monitor_alerts.c.rule_id == rule.id)
    ).scalar()
    return None if last is None else float(last)


def _try_open(store: Store, rule: AlertRule, now: float) -> AlertChange | None:
    s = rule.detector
    assert isinstance(s, DetectorSettings)
    kind = METRICS[rule.metric].kind
    base_start, start, end = _window(rule, now)
    with store.connect() as conn:
        last = _last_resolved(conn, rule)
        if last is not None:  # the next episode is judged only on what came after the last one resolved
            start = max(start, math.ceil(last / s.bucket_s) * s.bucket_s)
        if start >= end:
            return None
        series = read_series(
            conn, rule.project_id, rule.metric, start=base_start, end=end, bucket_s=s.bucket_s, scope=rule.scope
        )[0]
        baseline = [b for b in series.buckets if b.start < start]
        window = [b for b in series.buckets if b.start >= start]
        found = detect(kind, baseline, window, s)
        if not found.fired or found.change_at is None:
            return None
        examples = example_traces(
            conn,
            rule.project_id,
            rule.metric,
            start=found.change_at,
            end=end,
            scope=rule.scope,
            high=found.direction == "up",
        )
    evidence = {
        "rule": rule.name,
        "metric": rule.metric,
        "scope": rule.scope.to_dict(),
        "window": {"start": start, "end": end, "bucket_s": s.bucket_s},
        "baseline_window": {"start": base_start, "end": start},
        **found.to_dict(),
        "series": [b.to_dict() for b in window],
        "cusum": found.path,
        "example_trace_ids": examples,
    }
    return _open_episode(store, rule, now, evidence)


def _open_episode(store: Store, rule: AlertRule, now: float, evidence: dict[str, Any]) -> AlertChange | None:
    """Store the episode and its audit event in one transaction (None: another replica opened it first)."""
    alert = Alert(new_id("alert"), rule.project_id, rule.id, rule.name, rule.metric, now, None, evidence, None, None)
    try:
        with store.begin() as conn:
            values = alert.to_dict()
            for key in ("rule", "status"):
                values.pop(key)
            conn.execute(insert(monitor_alerts).values(**values, rule_name=rule.name, open_rule_id=rule.id))
            append_event(
                conn,
                actor=ACTOR,
                action="monitor.alert.open",
                target=rule.name,
                project_id=rule.project_id,
                details={"alert_id": alert.id, **{k: v for k, v in evidence.items() if k not in ("series", "cusum")}},
            )
    except IntegrityError:  # another replica opened this episode first
        return None
    return AlertChange("opened", alert, rule.webhook_url)


def _try_resolve(store: Store, rule: AlertRule, alert: Alert, now: float) -> AlertChange | None:
    s = rule.detector
    assert isinstance(s, DetectorSettings)
    _, _, end = _window(rule, now)
    start = max(end - s.resolve_buckets * s.bucket_s, math.ceil(alert.opened_at / s.bucket_s) * s.bucket_s)
    if start >= end:
        return None
    baseline = alert.evidence.get("baseline") or {}
    with store.connect() as conn:
        recent = read_series(
            conn, rule.project_id, rule.metric, start=start, end=end, bucket_s=s.bucket_s, scope=rule.scope
        )[0]
    back, level = has_returned(
        METRICS[rule.metric].kind, float(baseline.get("mean", 0.0)), float(alert.evidence["min_effect"]), recent.buckets
    )
    if not back:
        return None
    resolution = {"level": level, "window": {"start": start, "end": end}, "baseline": baseline.get("mean")}
    return _resolve_episode(store, rule, alert, now, resolution)


def _resolve_episode(
    store: Store, rule: AlertRule, alert: Alert, now: float, resolution: dict[str, Any]
) -> AlertChange | None:
    """Close the episode with its audit event (None: another replica resolved it first)."""
    with store.begin() as conn:
        done = conn.execute(
            update(monitor_alerts)
            .where(monitor_alerts.c.id == alert.id, monitor_alerts.c.open_rule_id == rule.id)
            .values(resolved_at=now, open_rule_id=None, resolution=resolution)
        )
        if done.rowcount != 1:  # another replica resolved it
            return None
        append_event(
            conn,
            actor=ACTOR,
            action="monitor.alert.resolve",
            target=rule.name,
            project_id=rule.project_id,
            details={"alert_id": alert.id, **resolution},
        )
    resolved = replace(alert, resolved_at=now, resolution=resolution)
    return AlertChange("resolved", resolved, rule.webhook_url)


def _try_open_drift(store: Store, rule: AlertRule, settings: DriftSettings, now: float) -> AlertChange | None:
    with store.connect() as conn:
        found = check_drift(
            conn, rule.project_id, rule.scope, settings, now, not_before=_last_resolved(conn, rule), cache_key=rule.id
        )
    if not found.fired:
        return None
    evidence = {"rule": rule.name, "metric": rule.metric, "scope": rule.scope.to_dict(), **found.evidence()}
    return _open_episode(store, rule, now, evidence)


def _try_resolve_drift(
    store: Store, rule: AlertRule, settings: DriftSettings, alert: Alert, now: float
) -> AlertChange | None:
    with store.connect() as conn:
        found = check_drift(conn, rule.project_id, rule.scope, settings, now, cache_key=rule.id)
    level = resolve_level(settings)
    if found.auc is None or found.auc >= level:
        return None
    resolution = {
        "level": round(found.auc, 4),
        "resolve_below": level,
        "p_value": None if found.stats is None else round(found.stats.p_value, 6),
        "window": {"start": found.window[0], "end": found.window[1]},
        "baseline_window": {"start": found.reference[0], "end": found.reference[1], "pinned": found.pinned},
    }
    return _resolve_episode(store, rule, alert, now, resolution)


def evaluate_rule(store: Store, rule: AlertRule, now: float | None = None) -> AlertChange | None:
    """One evaluation of a rule at `now` (default: the clock): opens or resolves at most one episode."""
    now = time.time() if now is None else now
    with store.connect() as conn:
        current = _open_alert(conn, rule.id)
    if isinstance(rule.detector, DriftSettings):
        if current is None:
            return _try_open_drift(store, rule, rule.detector, now)
        return _try_resolve_drift(store, rule, rule.detector, current, now)
    if current is None:
        return _try_open(store, rule, now)
    return _try_resolve(store, rule, current, now)


class Notifier:
    """POSTs alert changes to webhooks in the background; `attempts` tries with `timeout_s` each."""

    def __init__(self, store: Store, *, attempts: int = 3, timeout_s: float = 5.0, backoff_s: float = 0.5) -> None:
        self.store = store
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, change: AlertChange) -> None:
        """Schedule the delivery and return at once (no-op without a webhook)."""
        if change.webhook_url is None:
            return
        task = asyncio.create_task(self._deliver(change), name=f"pilothouse-alert-{change.alert.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, change: AlertChange) -> None:
        assert change.webhook_url is not None
        outcome: dict[str, Any] = {"attempts": 0, "ok": False, "status": None, "error": None}
        for attempt in range(self.attempts):
            outcome["attempts"] = attempt + 1
            try:
                response = await self._client.post(change.webhook_url, json=change.payload())
                outcome["status"] = response.status_code
                if response.status_code < 300:
                    outcome["ok"], outcome["error"] = True, None
                    break
                outcome["error"] = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver refuses it: retrying will not help
            except httpx.HTTPError as exc:
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.backoff_s * 2**attempt)
        outcome["at"] = time.time()
        if not outcome["ok"]:
            log.warning("alert %s webhook failed: %s", change.alert.id, outcome["error"])
        try:
            await asyncio.to_thread(self._record, change, outcome)
        except Exception:
            log.exception("could not record the delivery of alert %s", change.alert.id)

    def _record(self, change: AlertChange, outcome: dict[str, Any]) -> None:
        with self.store.begin() as conn:
            row = conn.execute(select(monitor_alerts.c.delivery).where(monitor_alerts.c.id == change.alert.id)).first()
            delivery = dict(row.delivery or {}) if row is not None else {}
            delivery[change.event] = outcome
            conn.execute(update(monitor_alerts).where(monitor_alerts.c.id == change.alert.id).values(delivery=delivery))

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Wait (a bounded time) for deliveries in flight, then close the client."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in self._tasks:
            task.cancel()
        await self._client.aclose()
