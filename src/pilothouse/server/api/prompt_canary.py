"""/api/prompts/{name}/labels/{label}/canary: split a label between a baseline and a candidate version, watch
the candidate under a rollback rule, and run the rule on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.prompts.registry.labels import set_label, set_rollback_rule
from pilothouse.prompts.registry.lookup import get_label
from pilothouse.prompts.registry.refs import MAX_VERSION
from pilothouse.prompts.rollout.canary_check import canary_status, check_label, evaluate, parse_rule
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


class CanarySet(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    baseline: int = Field(ge=1, le=MAX_VERSION, description="The version that keeps most of the traffic.")
    candidate: int = Field(ge=1, le=MAX_VERSION, description="The version under test.")
    weight: float = Field(gt=0, lt=100, description="The candidate's share of traffic, in percent.")
    rollback_rule: dict[str, Any] | None = Field(
        default=None,
        description='{"metric": "score:NAME" | "error_rate" | "cost_per_request" | "latency_ms", '
        '"min_samples": 10, "alpha": 0.05, "min_effect_abs"?, "min_effect_rel"?, "bucket_s"?}; null: no '
        "automatic rollback. Unset optional fields take the metric's defaults (docs/prompt-canary.md).",
    )


def _invalidate(state: AppState, project_id: str, name: str) -> None:
    """After the commit: this process's gateway uses the new splits from its next call on."""
    if state.gateway.prompts is not None:
        state.gateway.prompts.invalidate(project_id, name)


def _weight(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 6)


@router.put("/{name}/labels/{label}/canary")
def set_canary(name: str, label: str, body: CanarySet, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Split the label: `100 - weight` percent to the baseline, `weight` to the candidate (sticky per end user),
    and set (or clear) its rollback rule. Audited as `prompt.canary.start`."""
    require_role(principal, "developer")
    if body.baseline == body.candidate:
        raise InvalidRequest("baseline and candidate must be different versions", param="candidate")
    rule = None
    if body.rollback_rule is not None:
        try:
            rule = parse_rule({**body.rollback_rule, "baseline": body.baseline})
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="rollback_rule") from exc
    splits = [
        {"version": body.baseline, "weight": _weight(100.0 - body.weight)},
        {"version": body.candidate, "weight": _weight(body.weight)},
    ]
    with state.store.begin() as conn:
        set_label(
            conn,
            project_id=principal.project_id,
            prompt_name=name,
            label=label,
            splits=splits,
            actor=principal.key_id,
            role=principal.role,
            reason=f"canary: v{body.candidate} gets {body.weight:g}% (baseline v{body.baseline})",
            action="prompt.canary.start",
        )
        current = set_rollback_rule(
            conn,
            project_id=principal.project_id,
            prompt_name=name,
            label=label,
            rule=None if rule is None else rule.to_dict(),
            actor=principal.key_id,
        )
        outcome = evaluate(conn, principal.project_id, name, current)
    _invalidate(state, principal.project_id, name)
    return outcome.to_dict()


@router.get("/{name}/labels/{label}/canary")
def get_canary(name: str, label: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The label's split and rollback rule, and the live comparison of candidate and baseline (no action)."""
    with state.store.connect() as conn:
        current = get_label(conn, principal.project_id, name, label)
        if current is None:
            raise NotFound(f"prompt {name!r} has no label {label!r}")
        return evaluate(conn, principal.project_id, name, current).to_dict()


@router.get("/{name}/labels/{label}/canary/status")
def get_canary_status(name: str, label: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The canary's state: both arms' samples and estimates, the always-valid interval, the decision and why
    (recomputed from the traces now), and its audit events since the split was set (no action)."""
    with state.store.connect() as conn:
        return canary_status(conn, principal.project_id, name, label)


@router.post("/{name}/labels/{label}/canary/check")
def check_canary(name: str, label: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Run the rollback rule now: when the candidate is worse by more than the minimum effect (sequentially
    significant), the label goes back to the baseline (audited as `prompt.canary.rollback` with the decision's
    numbers); a change of the canary's state is audited as `prompt.canary.decision`."""
    require_role(principal, "developer")
    outcome = check_label(state.store, principal.project_id, name, label, actor=principal.key_id)
    if outcome.rolled_back:
        _invalidate(state, principal.project_id, name)
    return outcome.to_dict()
