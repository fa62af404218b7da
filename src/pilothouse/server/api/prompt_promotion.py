"""/api/prompts/{name}/tests (the stored scenario suite) and /api/prompts/{name}/promote (gated promotion).

A refused promotion answers 409 with the usual error object plus `comparison` (per-version pass counts,
failing cases, the rule); a successful one answers 200 with the moved label and the same comparison. With `gate`
the regression gate runs first (server/api/promotion_gate.py): a failure answers 409 `promotion_gate_failed` with
`gate` (the run, the failures, the Markdown report and the comparison).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import NotFound
from pilothouse.principal import Principal
from pilothouse.prompts.registry.lookup import get_test_suite
from pilothouse.prompts.registry.refs import MAX_VERSION
from pilothouse.prompts.rollout.promotion import PromotionRequest, promote
from pilothouse.prompts.testing.gateway_executor import GatewayExecutor
from pilothouse.prompts.testing.runner import Executor
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.api.promotion_gate import GateSpec, PromotionGateFailed, current_version, run_gate
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION, description="The candidate version.")
    to: str = Field(default="production", min_length=1, max_length=100, description="The label to move.")
    force: bool = Field(default=False, description="Move the label even if the gate fails (audited).")
    reason: str | None = Field(default=None, max_length=2000, description="Why, for the audit log.")
    gate: GateSpec | None = Field(
        default=None,
        description="Also run the regression gate: the candidate against the label's current version on a dataset "
        "(server/api/promotion_gate.py); a significant regression refuses the promotion (409 promotion_gate_failed).",
    )


def _suite(state: AppState, principal: Principal, name: str) -> list[dict[str, Any]] | None:
    with state.store.connect() as conn:
        return get_test_suite(conn, principal.project_id, name)


@router.get("/{name}/tests")
async def tests(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    cases = await asyncio.to_thread(_suite, state, principal, name)
    if cases is None:
        raise NotFound(
            f"prompt '{name}' has no scenario tests: add {name}.tests.yaml beside its prompt file and push the folder",
            code="prompt_tests_not_found",
        )
    return {"name": name, "cases": cases}


@router.post("/{name}/promote")
async def promote_version(name: str, body: PromoteBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "developer")

    def executor_for(ref: str) -> Executor:
        return GatewayExecutor(state.pipeline, principal, ref)

    reason, gate = body.reason, None
    if body.gate is not None:
        current = await asyncio.to_thread(current_version, state, principal, name, body.to)
        if current is None or current == body.version:
            gate = {"skipped": f"'{body.to}' points at {'nothing yet' if current is None else 'this version'}"}
        else:
            gate = await run_gate(state, principal, name, body.version, current, body.gate)
            if not gate["passed"] and not body.force:
                raise PromotionGateFailed(
                    f"promotion of {name} v{body.version} to '{body.to}' refused by the evaluation gate: "
                    f"{'; '.join(gate['failures'])} (run {gate['run']}; use --force to override, audited)",
                    gate,
                )
            verdict = "passed" if gate["passed"] else "FAILED (forced: " + "; ".join(gate["failures"]) + ")"
            reason = (f"{reason}; " if reason else "") + f"evaluation gate {verdict}, run {gate['run']}"
    request = PromotionRequest(version=body.version, to=body.to, force=body.force, reason=reason)
    outcome = await promote(state.store, principal, name, request, executor_for)
    return {**outcome.to_dict(), "gate": gate}
