"""Gated promotion: move a label to a version only if that version passes the prompt's scenario tests and is
no worse than the version the label points at now (the rule is in `testing/comparison.py`).

Both versions run the stored suite (through the executor the caller supplies: in the server, the gateway
in process, so the calls are traced), the results are compared, and then, in one transaction, the label
moves (audit `prompt.promote`, its reason naming the results) or the promotion is refused with the
comparison. `force` moves the label despite a failed gate and records `prompt.promote.forced` with the
whole comparison. A label that moved while the tests ran is not overwritten (Conflict: run it again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, InvalidRequest, Unprocessable
from pilothouse.principal import Principal
from pilothouse.prompts.registry.labels import ADMIN, protected_label_error, set_label
from pilothouse.prompts.registry.lookup import (
    Label,
    baseline_version,
    get_label,
    get_test_suite,
    get_version,
    label_dict,
)
from pilothouse.prompts.registry.refs import PromptRef, check_label, check_name
from pilothouse.prompts.testing.comparison import Comparison, compare
from pilothouse.prompts.testing.runner import Executor, SuiteResult, run_suite
from pilothouse.prompts.testing.scenarios import Case, ScenarioFileError, parse_cases
from pilothouse.store.engine import Store
from pilothouse.store.keys import role_at_least

ExecutorFactory = Callable[[str], Executor]  # "NAME@VERSION" -> an executor for that version
PROMOTE_ACTION = "prompt.promote"
FORCED_ACTION = "prompt.promote.forced"


@dataclass(frozen=True, slots=True)
class PromotionRequest:
    version: int
    to: str = "production"
    force: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PromotionOutcome:
    comparison: Comparison | None
    moved: bool
    forced: bool
    label: Label | None
    previous: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "moved": self.moved,
            "forced": self.forced,
            "previous_version": self.previous,
            "label": None if self.label is None else label_dict(self.label),
            "message": self.message,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
        }


class PromotionRefused(Conflict):
    """The candidate failed the gate; the comparison says how (the API answers 409 with it)."""

    def __init__(self, comparison: Comparison) -> None:
        reasons = "; ".join(comparison.reasons)
        super().__init__(
            f"promotion of {comparison.prompt} v{comparison.candidate.version} to '{comparison.label}' refused: "
            f"{reasons} (fix the prompt, or use --force to override; the override is audited)",
            code="promotion_refused",
        )
        self.comparison = comparison

    def body(self) -> dict[str, Any]:
        return {**super().body(), "comparison": self.comparison.to_dict()}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What was read before the tests ran."""

    candidate: int
    label: Label | None
    current: int | None
    cases: list[Case]


def _plan(store: Store, principal: Principal, name: str, request: PromotionRequest) -> _Plan:
    with store.connect() as conn:
        candidate = get_version(conn, principal.project_id, PromptRef(name, version=request.version))
        label = get_label(conn, principal.project_id, name, request.to)
        raw_cases = get_test_suite(conn, principal.project_id, name)
    if label is not None and label.protected and not role_at_least(principal.role, ADMIN):
        raise protected_label_error(name, request.to, candidate.version, principal.role, "promoting to it")
    try:
        cases = parse_cases(raw_cases, source=f"the stored tests of '{name}'") if raw_cases else []
    except ScenarioFileError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        raise Unprocessable(
            f"the stored tests of '{name}' are not valid ({problems}); fix {name}.tests.yaml and push it",
            code="invalid_prompt_tests",
        ) from None
    current = None if label is None else baseline_version(label.splits)
    return _Plan(candidate.version, label, current, cases)


def _reason(comparison: Comparison, request: PromotionRequest) -> str:
    text = comparison.summary()
    if not comparison.allowed:
        text += " (gate failed: " + "; ".join(comparison.reasons) + ")"
    return f"{request.reason}; {text}" if request.reason else text


def _commit(
    store: Store, principal: Principal, name: str, request: PromotionRequest, plan: _Plan, comparison: Comparison
) -> Label:
    forced = not comparison.allowed
    with store.begin() as conn:
        now = get_label(conn, principal.project_id, name, request.to)
        before = None if plan.label is None else plan.label.splits
        if (None if now is None else now.splits) != before:
            raise Conflict(
                f"the label '{request.to}' of prompt '{name}' changed while the tests ran; run the promotion again",
                code="label_changed",
            )
        label = set_label(
            conn,
            project_id=principal.project_id,
            prompt_name=name,
            label=request.to,
            splits=[{"version": plan.candidate, "weight": 100}],
            actor=principal.key_id,
            role=principal.role,
            reason=_reason(comparison, request),
            action=PROMOTE_ACTION,
        )
        if forced:
            append_event(
                conn,
                actor=principal.key_id,
                action=FORCED_ACTION,
                target=f"prompt:{name}@{request.to}",
                project_id=principal.project_id,
                details={
                    "prompt": name,
                    "label": request.to,
                    "version": plan.candidate,
                    "from": plan.current,
                    "reason": request.reason,
                    "comparison": comparison.to_dict(),
                },
            )
    return label


async def promote(
    store: Store, principal: Principal, name: str, request: PromotionRequest, executor_for: ExecutorFactory
) -> PromotionOutcome:
    """Run the gate and move the label (or raise PromotionRefused). See the module docstring."""
    try:
        check_name(name)
        check_label(request.to)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="to") from None
    plan = await asyncio.to_thread(_plan, store, principal, name, request)
    if plan.label is not None and [int(s["version"]) for s in plan.label.splits] == [plan.candidate]:
        return PromotionOutcome(
            None, False, False, plan.label, plan.current, f"'{request.to}' already points at version {plan.candidate}"
        )
    candidate = await _run(plan.cases, name, plan.candidate, executor_for)
    current: SuiteResult | None = None
    if plan.current is not None:
        same = plan.current == plan.candidate
        current = candidate if same else await _run(plan.cases, name, plan.current, executor_for)
    comparison = compare(name, request.to, candidate, current)
    if not comparison.allowed and not request.force:
        raise PromotionRefused(comparison)
    label = await asyncio.to_thread(_commit, store, principal, name, request, plan, comparison)
    forced = not comparison.allowed
    verb = "moved despite the failed gate (forced)" if forced else "moved"
    message = f"'{request.to}' {verb}: version {plan.current or '-'} → {plan.candidate}; {comparison.summary()}"
    return PromotionOutcome(comparison, True, forced, label, plan.current, message)


async def _run(cases: list[Case], name: str, version: int, executor_for: ExecutorFactory) -> SuiteResult:
    ref = f"{name}@{version}"
    return await run_suite(cases, executor_for(ref), target=ref, version=version)
