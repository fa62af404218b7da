"""Dashboard section 'Prompts': the prompts of the project, one prompt's versions, labels (with who moved them and
when), performance per version over time, canaries with their evidence and scenario tests, and a side-by-side
diff of two versions with the promote action.

Every read goes through the function the matching /api/prompts route runs (called with the session's state and
principal, so the same project and role rules apply); every action is a form that calls that API.

- GET /prompts                      the prompts (`prompts-table`)
- GET /prompts/{name}               one prompt (`versions-table`, `compare-form`, `labels-table`,
                                    `label-history-table`, `stats-table`, `tests-table`, `run-tests-form`,
                                    `test-runs`, `canary-LABEL`, `move-label-LABEL`, `canary-check-LABEL`)
- GET /prompts/{name}/canary/{label} the live canary fragment (refreshed every few seconds)
- GET /prompts/{name}/diff?a=&b=    two versions side by side (`prompt-diff`, `promote-form`)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pilothouse.errors import InvalidRequest
from pilothouse.prompts.registry.lookup import get_test_suite
from pilothouse.prompts.rollout.performance import prompt_performance
from pilothouse.server.api import prompt_activity, prompt_canary
from pilothouse.server.api import prompts as prompts_api
from pilothouse.store.keys import role_at_least
from pilothouse.timewindow import time_param
from pilothouse.ui.context import UiContext, UiDep
from pilothouse.ui.pages.prompts_charts import stats_charts
from pilothouse.ui.pages.prompts_diff import side_by_side
from pilothouse.ui.render import fragment, page

router = APIRouter(include_in_schema=False)

RANGES = ("24h", "7d", "30d", "90d")
DEFAULT_RANGE = "7d"
HISTORY_ROWS = 50
TEST_RUNS = 10


def _range(value: str | None) -> str:
    if value is None or value == "":
        return DEFAULT_RANGE
    if value not in RANGES:
        raise InvalidRequest(f"'range' must be one of {', '.join(RANGES)}, got {value!r}", param="range")
    return value


def _can(ctx: UiContext, role: str) -> bool:
    return role_at_least(ctx.principal.role, role)


@router.get("/prompts")
def prompt_list(ctx: UiDep) -> HTMLResponse:
    data = prompts_api.list_all(ctx.state, ctx.principal)["data"]
    return page(ctx, "prompts/list.html", title="Prompts", prompts=data)


def _canary(ctx: UiContext, name: str, label: str) -> dict[str, Any]:
    return prompt_canary.get_canary_status(name, label, ctx.state, ctx.principal)


def _stats(ctx: UiContext, name: str, since: str) -> dict[str, Any]:
    """What GET /api/prompts/{name}/stats answers (the same function; the table says whether it read the rows
    or the rollups)."""
    with ctx.state.store.connect() as conn:
        return prompt_performance(conn, ctx.principal.project_id, name, since=time_param(since, "range"))


def _tests(ctx: UiContext, name: str) -> list[dict[str, Any]] | None:
    with ctx.state.store.connect() as conn:
        return get_test_suite(conn, ctx.principal.project_id, name)


@router.get("/prompts/{name}")
def prompt_page(ctx: UiDep, name: str, range: str | None = None) -> HTMLResponse:
    since = _range(range)
    prompt = prompts_api.show(name, ctx.state, ctx.principal)  # NotFound for an unknown prompt
    stats = _stats(ctx, prompt["name"], since)
    history = prompt_activity.get_label_history(name, ctx.state, ctx.principal, limit=HISTORY_ROWS)
    runs = prompt_activity.get_test_runs(name, ctx.state, ctx.principal, limit=TEST_RUNS)["data"]
    canaries = [_canary(ctx, name, lbl["name"]) for lbl in prompt["labels"] if len(lbl["splits"]) > 1]
    versions = prompt["versions"]
    newest = versions[-1]["version"] if versions else None
    previous = versions[-2]["version"] if len(versions) > 1 else newest
    return page(
        ctx,
        "prompts/show.html",
        title=f"Prompt {prompt['name']}",
        prompt=prompt,
        versions=list(reversed(versions)),
        newest=newest,
        previous=previous,
        stats=stats,
        charts=stats_charts(stats),
        history=history,
        canaries=canaries,
        cases=_tests(ctx, name),
        runs=runs,
        ranges=RANGES,
        selected_range=since,
        can_write=_can(ctx, "developer"),
        is_admin=_can(ctx, "admin"),
    )


@router.get("/prompts/{name}/canary/{label}")
def canary_fragment(ctx: UiDep, name: str, label: str) -> HTMLResponse:
    return fragment(
        ctx,
        "prompts/_canary.html",
        prompt_name=name,
        canary=_canary(ctx, name, label),
        can_write=_can(ctx, "developer"),
    )


def _sides(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each changed part of the diff with its side-by-side rows: the messages, or the text."""
    parts = [
        {
            "title": f"Message {m['index'] + 1} ({m['status']}: {m['from_role'] or 'none'} → {m['to_role'] or 'none'})",
            "rows": side_by_side(m["diff"]),
        }
        for m in result["messages"]
    ]
    if result.get("text"):
        parts.append({"title": "Text", "rows": side_by_side(result["text"])})
    return parts


@router.get("/prompts/{name}/diff")
def diff_page(ctx: UiDep, name: str, a: str | None = None, b: str | None = None) -> HTMLResponse:
    if not a or not b:
        raise InvalidRequest("choose two versions to compare: /prompts/NAME/diff?a=1&b=2", param="a" if not a else "b")
    result = prompts_api.diff(name, ctx.state, ctx.principal, from_ref=a, to_ref=b)
    prompt = prompts_api.show(name, ctx.state, ctx.principal)
    labels = {lbl["name"]: lbl for lbl in prompt["labels"]}
    return page(
        ctx,
        "prompts/diff.html",
        title=f"Prompt {name}: v{result['from_version']} → v{result['to_version']}",
        prompt_name=name,
        diff=result,
        parts=_sides(result),
        versions=list(reversed(prompt["versions"])),
        labels=labels,
        production=labels.get("production"),
        can_write=_can(ctx, "developer"),
    )
