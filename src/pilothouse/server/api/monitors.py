"""/api/monitors: metric series (viewer), alert rules (admin to change), alert history, online evaluation rules.

Everything acts in the key's own project. See docs/monitors.md.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import Conflict, InvalidRequest, NotFound
from pilothouse.monitors.alerts import list_alerts
from pilothouse.monitors.drift import check_drift
from pilothouse.monitors.drift_settings import DriftSettings
from pilothouse.monitors.online_eval import (
    SCORERS,
    add_sampling_rule,
    list_sampling_rules,
    remove_sampling_rule,
)
from pilothouse.monitors.rules import RuleExists, add_rule, get_rule, list_rules, pin_reference, remove_rule
from pilothouse.monitors.series import GROUPS, METRICS, Scope, read_series
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.timewindow import parse_time

router = APIRouter(prefix="/api/monitors", tags=["monitors"])

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def _duration(text: str, param: str) -> float:
    """`24h`, `30m`, `7d` or a number of seconds, as seconds."""
    now = time.time()
    try:
        seconds = float(text) if text.replace(".", "", 1).isdigit() else now - parse_time(text, now=now)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be a duration such as 90s, 30m, 24h or 7d, got {text!r}", param=param
        ) from None
    if not seconds > 0:
        raise InvalidRequest(f"{param} must be a positive duration (e.g. 24h)", param=param)
    return seconds


class ScopeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, max_length=200)
    prompt_version: int | None = Field(default=None, ge=1)
    model: str | None = Field(default=None, max_length=200)
    tag: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=20)


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    metric: str = Field(description=f"One of {', '.join(METRICS)}.")
    scope: ScopeBody = Field(default_factory=ScopeBody)
    detector: dict[str, Any] = Field(
        default_factory=dict,
        description="bucket_s, window_s, baseline_s, min_abs, min_rel, false_alarm, direction (up, down, both), "
        "min_samples, resolve_buckets; for input_drift: bucket_s, window_s, baseline_s, reference_start, "
        "reference_end, alpha, min_auc, min_samples, max_samples, permutations, samples_per_hour "
        "(docs/monitors.md).",
    )
    webhook_url: str | None = Field(default=None, max_length=2000)


class SamplingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    rate: float = Field(gt=0, le=1, description="Share of matching traces to score.")
    scorers: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1,
        max_length=20,
        description=f"Metric names from the metric registry: {', '.join(SCORERS)} or a plugin's "
        "(docs/evaluation-metrics.md).",
    )
    scope: ScopeBody = Field(default_factory=ScopeBody)
    budget: int = Field(default=100, ge=1, le=10_000, description="Traces scored per pass at most.")


@router.get("/series")
def series(
    state: StateDep,
    principal: PrincipalDep,
    metric: str,
    by: Literal["prompt", "prompt_version", "model", "tag"] | None = None,
    window: Annotated[str, Query(max_length=20)] = "24h",
    bucket: Annotated[str, Query(max_length=20)] = "1h",
    prompt: str | None = None,
    prompt_version: Annotated[int | None, Query(ge=1)] = None,
    model: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """The metric per time bucket over the last `window`, one series per `by` group."""
    if metric not in METRICS:
        raise InvalidRequest(f"unknown metric {metric!r}; one of {', '.join(METRICS)}", param="metric")
    window_s, bucket_s = _duration(window, "window"), _duration(bucket, "bucket")
    end = time.time()
    start = (end - window_s) // bucket_s * bucket_s
    scope = Scope(prompt, prompt_version, model, tag)
    try:
        with state.store.connect() as conn:
            found = read_series(
                conn, principal.project_id, metric, start=start, end=end, bucket_s=bucket_s, scope=scope, by=by
            )
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="bucket") from exc
    info = METRICS[metric]
    return {
        "metric": metric,
        "description": info.description,
        "unit": info.unit,
        "by": by,
        "groups": list(GROUPS),
        "data": [s.to_dict() for s in found],
    }


@router.post("/rules", status_code=201)
def create_rule(body: RuleCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Add an alert rule (admin)."""
    require_role(principal, "admin")
    try:
        with state.store.begin() as conn:
            rule = add_rule(
                conn,
                project_id=principal.project_id,
                name=body.name,
                metric=body.metric,
                scope=body.scope.model_dump(exclude_none=True),
                detector=body.detector,
                webhook_url=body.webhook_url,
                created_by=principal.key_id,
            )
    except RuleExists as exc:
        raise Conflict(str(exc), param="name") from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return rule.to_dict()


@router.get("/rules")
def rules(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The project's alert rules."""
    with state.store.connect() as conn:
        return {"data": [r.to_dict() for r in list_rules(conn, principal.project_id)]}


@router.delete("/rules/{name}")
def delete_rule(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Remove an alert rule (admin); its alert history stays."""
    require_role(principal, "admin")
    with state.store.begin() as conn:
        rule = remove_rule(conn, principal.project_id, name)
    if rule is None:
        raise NotFound(f"no monitor rule {name!r} in this project", param="name")
    return {"deleted": True, **rule.to_dict()}


@router.get("/alerts")
def alerts(
    state: StateDep,
    principal: PrincipalDep,
    rule: str | None = None,
    status: Literal["firing", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alert episodes, newest first, with their evidence."""
    firing = None if status is None else status == "firing"
    with state.store.connect() as conn:
        found = list_alerts(conn, principal.project_id, rule=rule, firing=firing, limit=limit)
    return {"data": [a.to_dict() for a in found]}


@router.post("/online-eval", status_code=201)
def create_sampling(body: SamplingCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Add an online evaluation rule (admin): score a share of new traces in the background."""
    require_role(principal, "admin")
    try:
        with state.store.begin() as conn:
            rule = add_sampling_rule(
                conn,
                project_id=principal.project_id,
                name=body.name,
                rate=body.rate,
                scorers=list(body.scorers),
                scope=body.scope.model_dump(exclude_none=True),
                budget=body.budget,
                created_by=principal.key_id,
            )
    except ValueError as exc:
        if "already" in str(exc):
            raise Conflict(str(exc), param="name") from exc
        raise InvalidRequest(str(exc)) from exc
    return rule.to_dict()


@router.get("/online-eval")
def sampling_rules(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The project's online evaluation rules."""
    with state.store.connect() as conn:
        return {"data": [r.to_dict() for r in list_sampling_rules(conn, principal.project_id)]}


@router.delete("/online-eval/{name}")
def delete_sampling(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Remove an online evaluation rule (admin); the scores it wrote stay."""
    require_role(principal, "admin")
    with state.store.begin() as conn:
        if not remove_sampling_rule(conn, principal.project_id, name):
            raise NotFound(f"no online evaluation rule {name!r} in this project", param="name")
    return {"deleted": True, "name": name}


class ReferenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: str | float | None = Field(default=None, description="Epoch seconds, ISO 8601, or a duration ago (7d).")
    end: str | float | None = Field(default=None, description="Epoch seconds, ISO 8601, or a duration ago (1d).")
    trailing: bool = Field(default=False, description="Unpin: compare with the window just before the recent one.")


def _time(value: str | float, param: str, now: float) -> float:
    if isinstance(value, float | int):
        return float(value)
    try:
        return parse_time(value, now=now)
    except ValueError as exc:
        raise InvalidRequest(f"{param}: {exc}", param=param) from None


@router.put("/rules/{name}/reference")
def set_reference(name: str, body: ReferenceBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Pin an input_drift rule's reference window (admin), or go back to the trailing one."""
    require_role(principal, "admin")
    now = time.time()
    with state.store.begin() as conn:
        if get_rule(conn, principal.project_id, name) is None:
            raise NotFound(f"no monitor rule {name!r} in this project", param="name")
        if body.trailing:
            if body.start is not None or body.end is not None:
                raise InvalidRequest("give either trailing or start and end, not both", param="trailing")
            start = end = None
        else:
            if body.start is None or body.end is None:
                raise InvalidRequest("a pinned reference needs start and end (or trailing: true)", param="start")
            start, end = _time(body.start, "start", now), _time(body.end, "end", now)
        try:
            rule = pin_reference(conn, principal.project_id, name, start, end, now)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="end" if "future" in str(exc) else "name") from exc
    if rule is None:  # removed meanwhile
        raise NotFound(f"no monitor rule {name!r} in this project", param="name")
    return rule.to_dict()


@router.get("/rules/{name}/drift")
def drift(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """An input_drift rule's comparison now: windows, sample sizes, p-value, effect and the farthest inputs."""
    with state.store.connect() as conn:
        rule = get_rule(conn, principal.project_id, name)
        if rule is None:
            raise NotFound(f"no monitor rule {name!r} in this project", param="name")
        if not isinstance(rule.detector, DriftSettings):
            raise InvalidRequest(f"rule {name!r} watches {rule.metric}, not input_drift", param="name")
        found = check_drift(conn, rule.project_id, rule.scope, rule.detector, time.time(), cache_key=rule.id)
    return {"rule": rule.name, "scope": rule.scope.to_dict(), **found.evidence()}
