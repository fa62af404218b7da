"""Alert rules (stored): a metric of a project's traces, a scope, detector settings and a webhook.

Validation happens here, before the database: an unknown metric, scope field or detector setting, or a webhook
that is not an http(s) URL, is a ValueError naming the field. An `input_drift` rule's detector is a
`DriftSettings` (monitors/drift_settings.py); every other metric's is a CUSUM `DetectorSettings`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, insert, select, update

from pilothouse.monitors.detect import DetectorSettings
from pilothouse.monitors.drift_settings import INPUT_DRIFT, DriftSettings
from pilothouse.monitors.drift_store import drop_cursor
from pilothouse.monitors.series import METRICS, Scope
from pilothouse.store.ids import new_id
from pilothouse.store.tables import monitor_rules

__all__ = [
    "AlertRule",
    "RuleExists",
    "add_rule",
    "all_enabled_rules",
    "get_rule",
    "list_rules",
    "pin_reference",
    "remove_rule",
    "settings_for",
]

Settings = DetectorSettings | DriftSettings


class RuleExists(ValueError):
    """The project already has a rule of that name."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: str
    project_id: str
    name: str
    metric: str
    scope: Scope
    detector: Settings
    webhook_url: str | None
    enabled: bool
    created_at: float
    created_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "metric": self.metric,
            "scope": self.scope.to_dict(),
            "detector": self.detector.to_dict(),
            "webhook_url": self.webhook_url,
            "enabled": self.enabled,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def settings_for(metric: str, detector: dict[str, Any] | None) -> Settings:
    """The detector settings of a rule on `metric` (ValueError naming a bad or unknown field)."""
    if metric == INPUT_DRIFT:
        return DriftSettings.from_dict(detector)
    return DetectorSettings.from_dict(detector)


def _row(row: Any) -> AlertRule:
    return AlertRule(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        metric=row.metric,
        scope=Scope.from_dict(row.scope),
        detector=settings_for(row.metric, row.detector),
        webhook_url=row.webhook_url,
        enabled=bool(row.enabled),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def check_webhook(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise ValueError("webhook_url must be an http or https URL")
    return url


def add_rule(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    metric: str,
    scope: dict[str, Any] | None = None,
    detector: dict[str, Any] | None = None,
    webhook_url: str | None = None,
    created_by: str | None = None,
) -> AlertRule:
    """Validate and store a rule; RuleExists when the name is taken, ValueError for a bad field."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    settings = settings_for(metric, detector)
    if isinstance(settings, DriftSettings):
        settings.check_not_future()
    rule = AlertRule(
        id=new_id("mon"),
        project_id=project_id,
        name=name,
        metric=metric,
        scope=Scope.from_dict(scope),
        detector=settings,
        webhook_url=check_webhook(webhook_url),
        enabled=True,
        created_at=time.time(),
        created_by=created_by,
    )
    taken = conn.execute(
        select(monitor_rules.c.id).where(monitor_rules.c.project_id == project_id, monitor_rules.c.name == name)
    ).first()
    if taken is not None:
        raise RuleExists(f"the project already has a monitor rule named {name!r}")
    values = rule.to_dict()
    values["scope"], values["detector"] = rule.scope.to_dict(), rule.detector.to_dict()
    conn.execute(insert(monitor_rules).values(**values))
    return rule


def list_rules(conn: Connection, project_id: str) -> list[AlertRule]:
    rows = conn.execute(
        select(monitor_rules).where(monitor_rules.c.project_id == project_id).order_by(monitor_rules.c.name)
    )
    return [_row(r) for r in rows]


def get_rule(conn: Connection, project_id: str, name: str) -> AlertRule | None:
    row = conn.execute(
        select(monitor_rules).where(monitor_rules.c.project_id == project_id, monitor_rules.c.name == name)
    ).first()
    return None if row is None else _row(row)


def all_enabled_rules(conn: Connection) -> list[AlertRule]:
    """Every project's enabled rules (the runner evaluates them all)."""
    rows = conn.execute(select(monitor_rules).where(monitor_rules.c.enabled.is_(True)).order_by(monitor_rules.c.id))
    return [_row(r) for r in rows]


def remove_rule(conn: Connection, project_id: str, name: str) -> AlertRule | None:
    """Delete a rule (its alert history stays); None when there is none of that name."""
    rule = get_rule(conn, project_id, name)
    if rule is not None:
        conn.execute(delete(monitor_rules).where(monitor_rules.c.id == rule.id))
        drop_cursor(conn, rule.id)  # an input-drift rule's sampling cursor
    return rule


def pin_reference(
    conn: Connection, project_id: str, name: str, start: float | None, end: float | None, now: float | None = None
) -> AlertRule | None:
    """Pin an input-drift rule's reference to [start, end) (None, None: back to the trailing reference).

    None when there is no rule of that name; ValueError when it is not an input-drift rule, or the window is
    empty or ends in the future."""
    rule = get_rule(conn, project_id, name)
    if rule is None:
        return None
    if not isinstance(rule.detector, DriftSettings):
        raise ValueError(f"rule {name!r} watches {rule.metric}; only {INPUT_DRIFT} rules have a reference window")
    settings = rule.detector.pin(start, end, now)
    conn.execute(update(monitor_rules).where(monitor_rules.c.id == rule.id).values(detector=settings.to_dict()))
    return AlertRule(**{**{f: getattr(rule, f) for f in rule.__dataclass_fields__}, "detector": settings})
