"""/api/prompts/{name}/tests (the stored scenario suite) and /api/prompts/{name}/promote (gated promotion).

A refused promotion answers 409 with the usual error object plus `comparison` (per-version pass counts,
failing cases, the rule); a successful one answers 200 with the moved label and the same comparison.
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
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION, description="The candidate version.")
    to: str = Field(default="production", min_length=1, max_length=100, description="The label to move.")
    force: bool = Field(default=False, description="Move the label even if the gate fails (audited).")
    reason: str | None = Field(default=None, max_length=2000, description="Why, for the audit log.")


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

    request = PromotionRequest(version=body.version, to=body.to, force=body.force, reason=body.reason)
    outcome = await promote(state.store, principal, name, request, executor_for)
    return outcome.to_dict()
