"""Running a prompt's stored scenario suite against one version, without moving any label.

The same cases and the same runner as gated promotion (`rollout/promotion.py`) and `pilothouse prompt test`:
the suite stored with the prompt is parsed, the version is checked to exist, every case runs through the
executor the caller supplies (in the server: the gateway in process, so each call is admitted, priced and
traced), and the result is recorded in the audit log as `prompt.tests.run` (target `prompt:NAME`) with the
counts and each case's verdict, so the run can be read back later (`test_runs`) and its spend is accounted for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import NotFound, Unprocessable
from pilothouse.principal import Principal
from pilothouse.prompts.registry.lookup import get_test_suite, get_version, require_prompt
from pilothouse.prompts.registry.refs import PromptRef
from pilothouse.prompts.testing.runner import Executor, SuiteResult, run_suite
from pilothouse.prompts.testing.scenarios import Case, ScenarioFileError, parse_cases
from pilothouse.store.engine import Store
from pilothouse.store.prompt_events import prompt_events

RUN_ACTION = "prompt.tests.run"
MAX_RECORDED_CASES = 200
"""At most this many cases' verdicts go into the audit event (the counts always cover every case)."""
MAX_REASON = 500

ExecutorFactory = Callable[[str], Executor]  # "NAME@VERSION" -> an executor for that version


@dataclass(frozen=True, slots=True)
class _Plan:
    version: int
    cases: list[Case]


def _plan(store: Store, project_id: str, name: str, ref: PromptRef) -> _Plan:
    with store.connect() as conn:
        version = get_version(conn, project_id, ref)  # NotFound for an unknown prompt or version
        raw = get_test_suite(conn, project_id, name)
    if not raw:
        raise NotFound(
            f"prompt '{name}' has no scenario tests: add {name}.tests.yaml beside its prompt file and push the folder",
            code="prompt_tests_not_found",
        )
    try:
        cases = parse_cases(raw, source=f"the stored tests of '{name}'")
    except ScenarioFileError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        raise Unprocessable(
            f"the stored tests of '{name}' are not valid ({problems}); fix {name}.tests.yaml and push it",
            code="invalid_prompt_tests",
        ) from None
    return _Plan(version.version, cases)


def run_details(name: str, suite: SuiteResult) -> dict[str, Any]:
    """What the audit event keeps of a run: the counts and each case's verdict (bounded)."""
    cost = suite.total_cost_usd()
    return {
        "prompt": name,
        "version": suite.version,
        "total": suite.total,
        "passed": suite.passed,
        "failed": suite.failed,
        "mean_latency_ms": suite.mean_latency_ms(),
        "total_cost_usd": None if cost is None else format(cost, "f"),
        "cases": [
            {"name": c.name, "passed": c.passed, "reason": c.reason()[:MAX_REASON], "trace_id": c.trace_id}
            for c in suite.cases[:MAX_RECORDED_CASES]
        ],
    }


def _record(store: Store, principal: Principal, name: str, suite: SuiteResult) -> None:
    with store.begin() as conn:
        append_event(
            conn,
            actor=principal.key_id,
            action=RUN_ACTION,
            target=f"prompt:{name}",
            project_id=principal.project_id,
            details=run_details(name, suite),
        )


async def run_stored_tests(
    store: Store, principal: Principal, name: str, version: int, executor_for: ExecutorFactory
) -> SuiteResult:
    """Run the stored suite of `name` against `version` and audit the outcome. NotFound for an unknown prompt
    or version or a prompt without tests; Unprocessable for a stored suite that no longer parses."""
    plan = await asyncio.to_thread(_plan, store, principal.project_id, name, PromptRef(name, version=version))
    target = f"{name}@{plan.version}"
    suite = await run_suite(plan.cases, executor_for(target), target=target, version=plan.version)
    await asyncio.to_thread(_record, store, principal, name, suite)
    return suite


def test_runs(conn: Connection, project_id: str, name: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The prompt's recorded test runs, newest first: who ran them, when, and what each case did. NotFound for
    an unknown prompt."""
    require_prompt(conn, project_id, name)
    events = prompt_events(conn, project_id, name, actions=(RUN_ACTION,), labels=False, limit=max(1, min(limit, 100)))
    return [{"seq": e.seq, "ts": e.ts, "actor": e.actor, **(e.details or {})} for e in events]
