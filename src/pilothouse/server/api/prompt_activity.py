"""/api/prompts/{name}/label-history and /api/prompts/{name}/tests/run(s): what happened to a prompt's labels,
and its scenario tests run on demand against one version, without moving any label.

Roles: viewers read the history and the recorded runs (as they read the canary's audit events); running the
tests calls models through the gateway (it spends the project's budget), so it needs a developer key, as a
gated promotion does. A run is audited as `prompt.tests.run` with each case's verdict.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import InvalidRequest
from pilothouse.prompts.registry.label_history import MAX_LIMIT, label_history
from pilothouse.prompts.registry.refs import LABEL_MAX, LABEL_RE, MAX_VERSION, check_name
from pilothouse.prompts.testing.gateway_executor import GatewayExecutor
from pilothouse.prompts.testing.runner import Executor
from pilothouse.prompts.testing.stored_run import run_stored_tests, test_runs
from pilothouse.server.api.audit import MAX_SEQ
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


class TestRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION, description="The version to run the stored scenario suite against.")


def _name(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="name") from None


@router.get("/{name}/label-history")
def get_label_history(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    label: Annotated[
        str | None, Query(max_length=LABEL_MAX, pattern=LABEL_RE.pattern, description="Only this label's changes.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ, description="Changes before this audit sequence.")] = None,
) -> dict[str, Any]:
    """Every move of the prompt's labels (moves, promotions, canary starts, decisions and rollbacks, protection
    changes), newest first, with who made it, when, from and to which version, and why."""
    with state.store.connect() as conn:
        return label_history(conn, principal.project_id, _name(name), label=label, limit=limit, before_seq=before)


@router.get("/{name}/tests/runs")
def get_test_runs(
    name: str, state: StateDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """The prompt's recorded scenario test runs, newest first (who, when, which version, each case's verdict)."""
    with state.store.connect() as conn:
        return {"name": name, "data": test_runs(conn, principal.project_id, _name(name), limit=limit)}


@router.post("/{name}/tests/run")
async def run_tests(name: str, body: TestRunBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Run the stored scenario suite against `version` through the gateway (traced, tagged `prompt-test`) and
    answer each case's result; no label moves. 404 when the prompt, the version or its tests do not exist."""
    require_role(principal, "developer")
    prompt_name = _name(name)

    def executor_for(ref: str) -> Executor:
        return GatewayExecutor(state.pipeline, principal, ref)

    suite = await run_stored_tests(state.store, principal, prompt_name, body.version, executor_for)
    return {"name": prompt_name, **suite.to_dict()}
