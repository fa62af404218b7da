"""/api/prompts/{name}/stats: each version's calls, error rate, latency, tokens, cost and scores, by day."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.prompts import registry
from pilothouse.prompts.performance import parse_since, prompt_performance
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.store.tables import prompts

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


def _time(text: str, param: str) -> float:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise InvalidRequest(f"'{param}': {exc}", param=param) from exc


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
    start = _time(since, "since")
    end = None if until is None else _time(until, "until")
    with state.store.connect() as conn:
        exists = conn.execute(
            select(prompts.c.id).where(prompts.c.project_id == principal.project_id, prompts.c.name == name)
        ).first()
        if exists is None:
            raise NotFound(f"no prompt {name!r} in this project; push it with `pilothouse prompt push`")
        versions = None
        if label is not None:
            current = registry.get_label(conn, principal.project_id, name, label)
            if current is None:
                raise NotFound(f"prompt {name!r} has no label {label!r}", param="label")
            versions = [int(s["version"]) for s in current.splits]
        result = prompt_performance(conn, principal.project_id, name, since=start, until=end, versions=versions)
    result["label"] = label
    return result
