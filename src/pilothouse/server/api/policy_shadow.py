"""/api/policies/{name}/shadow: what a policy in shadow mode would have done (docs/security.md, "Guard policies").

A shadow-mode policy, or a rule whose action is `shadow`, is evaluated and recorded on each call's `guard` span
but never acted on. This route reads those records back (guards/policy/shadow_results.py): hits per version,
rule and would-be action, with example traces, over the project's newest traces in a time window. The viewer
role may read it, as it may read the policy itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pilothouse.errors import NotFound
from pilothouse.guards.policy.shadow_results import MAX_TRACES, shadow_results
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.store import policies as repo
from pilothouse.timewindow import time_param

router = APIRouter(prefix="/api/policies", tags=["policies"])

PolicyName = Annotated[str, Path(min_length=1, max_length=200, description="The policy's name.")]


@router.get("/{name}/shadow")
async def policy_shadow_results(
    name: PolicyName,
    state: StateDep,
    principal: PrincipalDep,
    since: Annotated[
        str,
        Query(
            max_length=64, description="Traces started at or after: a duration before now (7d, 24h), epoch or ISO 8601."
        ),
    ] = "7d",
    max_traces: Annotated[
        int, Query(ge=1, le=MAX_TRACES, description="Look at at most this many of the newest traces.")
    ] = MAX_TRACES,
) -> dict[str, Any]:
    """The policy's shadow hits: counts per version, rule and the action it would have taken, with example
    traces (`capped`: more traces were in the window than were looked at)."""
    require_role(principal, "viewer")
    start = time_param(since, "since", now=time.time())

    def read() -> dict[str, Any]:
        with state.store.connect() as conn:
            if repo.get_policy(conn, principal.project_id, name) is None:
                raise NotFound(f"no policy named {name!r} in this project", code="policy_not_found")
            report = shadow_results(conn, principal.project_id, since=start, policy=name, max_traces=max_traces)
        return {"policy": name, **report.to_dict()}

    return await asyncio.to_thread(read)
