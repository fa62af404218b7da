"""/api/prompts/{name}/stats: each version's calls, error rate, latency, tokens, cost and scores, by day."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pilothouse.prompts.rollout.performance import prompt_stats
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.timewindow import time_param

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


@router.get("/{name}/stats")
def stats(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    since: str = "7d",
    until: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """`since`/`until`: a duration before now (7d, 24h, 30m), epoch seconds or ISO 8601. `label`: only the
    versions the label points at now."""
    start, end = time_param(since, "since"), time_param(until, "until")
    with state.store.connect() as conn:
        return prompt_stats(conn, principal.project_id, name, since=start, until=end, label=label)
