"""Gated promotion. The rule (the candidate must pass every case and no fewer than the current version; latency
and cost are reported, never decisive), then `promotion.promote` on the real store (SQLite and PostgreSQL) with
the registry and faked executors: the label moves only through the gate, refusals change nothing, `force` is
audited with the comparison."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from pilothouse.audit.chain import list_events
from pilothouse.errors import Conflict, Forbidden, InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.prompts.registry.labels import protect_label, set_label
from pilothouse.prompts.registry.lookup import baseline_version, get_label
from pilothouse.prompts.registry.push import push_files
from pilothouse.prompts.rollout.promotion import (
    FORCED_ACTION,
    PROMOTE_ACTION,
    PromotionRefused,
    PromotionRequest,
    promote,
)
from pilothouse.prompts.testing.assertions import AssertionOutcome, Execution
from pilothouse.prompts.testing.comparison import RULE, compare
from pilothouse.prompts.testing.runner import CaseResult, ExecutionFailed, Executor, SuiteResult
from pilothouse.prompts.testing.scenarios import Case
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project


def case(name: str, passed: bool, *, latency: float = 100.0, error: str | None = None) -> CaseResult:
    outcome = AssertionOutcome("contains", "contains 'x'", passed, "found" if passed else "missing 'x' in 'y'")
    execution = None if error else Execution(output="y", latency_ms=latency, cost_usd=Decimal("0.001"))
    return CaseResult(name, [] if error else [outcome], execution, error)


def suite(version: int, *verdicts: bool, latency: float = 100.0) -> SuiteResult:
    names = ["a", "b", "c", "d"]
    return SuiteResult(
        f"p@{version}", version, [case(n, v, latency=latency) for n, v in zip(names, verdicts, strict=False)]
    )


def test_a_candidate_passing_everything_is_promoted() -> None:
    result = compare("p", "production", suite(2, True, True, True), suite(1, True, False, True))
    assert result.allowed and result.reasons == [] and result.regressions == []
    assert result.summary() == "scenario tests: candidate v2 passed 3/3; current v1 passed 2/3"
    body = result.to_dict()
    assert body["allowed"] is True and body["rule"] == RULE
    assert body["candidate"]["passed"] == 3 and body["current"]["failing"] == [
        {"case": "b", "reason": "contains 'x': missing 'x' in 'y'"}
    ]
    assert body["cases"][1] == {
        "case": "b",
        "candidate": {"passed": True, "reason": "", "latency_ms": 100.0, "trace_id": None},
        "current": {
            "passed": False,
            "reason": "contains 'x': missing 'x' in 'y'",
            "latency_ms": 100.0,
            "trace_id": None,
        },
    }


def test_a_slower_or_costlier_candidate_is_still_promoted() -> None:
    result = compare("p", "production", suite(2, True, True, latency=900.0), suite(1, True, True, latency=10.0))
    assert result.allowed
    assert result.to_dict()["candidate"]["mean_latency_ms"] == 900.0


def test_worse_than_current_is_refused_with_both_reasons() -> None:
    result = compare("p", "production", suite(3, True, False, False), suite(2, True, True, False))
    assert not result.allowed
    assert result.reasons == [
        "candidate v3 fails 2 of 3 case(s): b, c",
        "candidate v3 passes 1 case(s), fewer than the 2 of current v2",
    ]
    assert result.regressions == ["b"]  # c failed on the current version too
    assert result.to_dict()["regressions"] == ["b"]


def test_any_failing_case_is_refused_even_when_current_is_no_better() -> None:
    result = compare("p", "production", suite(3, True, False), suite(2, True, False))
    assert not result.allowed
    assert result.reasons == ["candidate v3 fails 1 of 2 case(s): b"]
    assert result.regressions == []


def test_a_failed_call_counts_as_a_failing_case() -> None:
    candidate = SuiteResult("p@2", 2, [case("a", True), case("b", False, error="422: missing variable 'q'")])
    result = compare("p", "staging", candidate, None)
    assert not result.allowed
    assert result.to_dict()["candidate"]["failing"] == [{"case": "b", "reason": "error: 422: missing variable 'q'"}]


def test_a_new_label_needs_only_the_candidate_to_pass() -> None:
    result = compare("p", "staging", suite(1, True, True), None)
    assert result.allowed and result.current is None
    assert result.summary() == "scenario tests: candidate v1 passed 2/2; 'staging' pointed at no version"
    assert result.to_dict()["cases"][0]["current"] is None


def test_no_tests_means_an_ungated_promotion() -> None:
    result = compare("p", "production", SuiteResult("p@2", 2, []), SuiteResult("p@1", 1, []))
    assert result.allowed and not result.gated
    assert result.summary() == "no scenario tests stored for p: promoted without a gate"


# -- the flow on the store ------------------------------------------------------------------------------

TESTS = """
- name: greets
  variables: {who: Ada}
  assert: [{contains: hello}]
- name: short
  variables: {who: Bob}
  assert: [{max_tokens: 5}]
"""


def prompt_file(text: str) -> str:
    return (
        "name: greeter\nmodel: smollm2-135m\nvariables:\n  who: {type: string}\n"
        f'messages:\n  - role: user\n    content: "{text} {{{{ who }}}}"\n'
    )


class Answers:
    """Executors per version: `outputs[version]` is what every case of that version answers."""

    def __init__(self, outputs: dict[int, str]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, str]] = []
        self.before_call: Callable[[], None] | None = None

    def __call__(self, ref: str) -> Executor:
        version = int(ref.rsplit("@", 1)[1])

        async def run(case: Case) -> Execution:
            if self.before_call is not None:
                self.before_call()
                self.before_call = None
            self.calls.append((ref, case.name))
            text = self.outputs.get(version)
            if text is None:
                raise ExecutionFailed("502: upstream down")
            return Execution(output=text, output_tokens=len(text.split()), latency_ms=5.0, prompt_version=version)

        return run


@pytest.fixture
def setup(store: Store) -> tuple[Store, Principal]:
    """A project with prompt `greeter` v1 (production) and v2, and its tests."""
    with store.begin() as conn:
        project = create_project(conn, "promo")
        for text in ("Say hello to", "Greet"):
            files = [("greeter.yaml", prompt_file(text)), ("greeter.tests.yaml", TESTS)]
            push_files(conn, project_id=project.id, files=files, actor="key_admin")
    return store, Principal("key_dev", project.id, "developer")


def label_version(store: Store, principal: Principal, label: str = "production") -> int | None:
    with store.connect() as conn:
        found = get_label(conn, principal.project_id, "greeter", label)
    return None if found is None else baseline_version(found.splits)


def events(store: Store, principal: Principal, action: str) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = list_events(conn, project_id=principal.project_id, after_seq=0, limit=1000)
    return [e.to_dict() for e in rows if e.action == action]


async def test_a_passing_candidate_moves_the_label(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    answers = Answers({1: "hello there", 2: "hello you"})
    outcome = await promote(store, principal, "greeter", PromotionRequest(2, reason="friendlier"), answers)
    assert outcome.moved and not outcome.forced and outcome.previous == 1
    assert label_version(store, principal) == 2
    assert sorted(answers.calls) == sorted([(f"greeter@{v}", c) for v in (1, 2) for c in ("greets", "short")])
    body = outcome.to_dict()
    assert body["label"]["version"] == 2 and body["comparison"]["allowed"] is True
    (event,) = events(store, principal, PROMOTE_ACTION)
    assert event["actor"] == "key_dev" and event["target"] == "prompt:greeter@production"
    assert event["details"]["reason"] == "friendlier; scenario tests: candidate v2 passed 2/2; current v1 passed 2/2"
    assert events(store, principal, FORCED_ACTION) == []


async def test_a_failing_candidate_is_refused_and_nothing_changes(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    answers = Answers({1: "hello there", 2: "good day to you my dear friend"})
    with pytest.raises(PromotionRefused) as info:
        await promote(store, principal, "greeter", PromotionRequest(2), answers)
    refused = info.value
    assert refused.status == 409 and refused.code == "promotion_refused"
    body = refused.body()
    assert body["error"]["message"].startswith("promotion of greeter v2 to 'production' refused: candidate v2 fails")
    comparison = body["comparison"]
    assert comparison["candidate"]["passed"] == 0 and comparison["current"]["passed"] == 2
    assert comparison["regressions"] == ["greets", "short"]
    assert label_version(store, principal) == 1
    assert events(store, principal, PROMOTE_ACTION) == []


async def test_force_moves_it_and_audits_the_comparison(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    answers = Answers({1: "hello there", 2: "good day to you my dear friend"})
    request = PromotionRequest(2, force=True, reason="hotfix, tests updated next")
    outcome = await promote(store, principal, "greeter", request, answers)
    assert outcome.moved and outcome.forced and label_version(store, principal) == 2
    assert "forced" in outcome.message
    (moved,) = events(store, principal, PROMOTE_ACTION)
    assert "gate failed" in moved["details"]["reason"]
    (forced,) = events(store, principal, FORCED_ACTION)
    details = forced["details"]
    assert (details["version"], details["from"], details["label"]) == (2, 1, "production")
    assert details["reason"] == "hotfix, tests updated next"
    assert details["comparison"]["allowed"] is False and details["comparison"]["candidate"]["passed"] == 0


async def test_force_on_a_passing_gate_is_a_plain_promotion(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    outcome = await promote(
        store, principal, "greeter", PromotionRequest(2, force=True), Answers({1: "hi", 2: "hello"})
    )
    assert outcome.moved and not outcome.forced
    assert events(store, principal, FORCED_ACTION) == []


async def test_a_call_failure_fails_the_gate(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    with pytest.raises(PromotionRefused) as info:
        await promote(store, principal, "greeter", PromotionRequest(2), Answers({1: "hello"}))
    failing = info.value.comparison.to_dict()["candidate"]["failing"]
    assert failing[0] == {"case": "greets", "reason": "error: 502: upstream down"}


async def test_a_new_label_needs_only_the_candidate(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    answers = Answers({2: "hello"})
    outcome = await promote(store, principal, "greeter", PromotionRequest(2, to="staging"), answers)
    assert outcome.moved and outcome.previous is None and label_version(store, principal, "staging") == 2
    assert {ref for ref, _ in answers.calls} == {"greeter@2"}


async def test_already_there_runs_nothing(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    answers = Answers({})
    outcome = await promote(store, principal, "greeter", PromotionRequest(1), answers)
    assert not outcome.moved and outcome.message == "'production' already points at version 1"
    assert answers.calls == [] and outcome.to_dict()["comparison"] is None


async def test_protected_labels_need_an_admin_before_anything_runs(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    with store.begin() as conn:
        protect_label(
            conn,
            project_id=principal.project_id,
            prompt_name="greeter",
            label="production",
            protected=True,
            actor="key_admin",
            role="admin",
        )
    answers = Answers({1: "hello", 2: "hello"})
    with pytest.raises(Forbidden, match="protected") as refused:
        await promote(store, principal, "greeter", PromotionRequest(2), answers)
    assert answers.calls == []
    # The hint does not send a developer back to `prompt promote` on their own: an admin must run it.
    assert "promoting to it needs an admin key" in refused.value.message
    assert "Ask an admin to run `pilothouse prompt promote greeter 2 --to production`" in refused.value.message
    admin = Principal("key_admin", principal.project_id, "admin")
    assert (await promote(store, admin, "greeter", PromotionRequest(2), answers)).moved


async def test_a_label_moved_during_the_tests_is_not_overwritten(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    answers = Answers({1: "hello", 2: "hello"})

    def someone_else_moves_it() -> None:
        with store.begin() as conn:
            set_label(
                conn,
                project_id=principal.project_id,
                prompt_name="greeter",
                label="production",
                splits=[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
                actor="key_other",
                role="admin",
            )

    answers.before_call = someone_else_moves_it
    with pytest.raises(Conflict, match="changed while the tests ran"):
        await promote(store, principal, "greeter", PromotionRequest(2), answers)
    with store.connect() as conn:
        label = get_label(conn, principal.project_id, "greeter", "production")
    assert label is not None and len(label.splits) == 2


async def test_invalid_stored_tests_and_unknown_versions(setup: tuple[Store, Principal]) -> None:
    store, principal = setup
    with pytest.raises(NotFound, match="no version 9"):
        await promote(store, principal, "greeter", PromotionRequest(9), Answers({}))
    files = [
        ("greeter.yaml", prompt_file("Greet")),
        ("greeter.tests.yaml", "- name: x\n  assert: [{regex: '('}]\n"),
    ]
    # An invalid tests file is refused at push, naming the case, so promotion never meets one.
    with (
        pytest.raises(InvalidRequest, match=r"cases\[0\]\.assert\[0\]\.regex: invalid regular expression"),
        store.begin() as conn,
    ):
        push_files(conn, project_id=principal.project_id, files=files, actor="key_admin")


async def test_without_tests_the_promotion_is_ungated(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "bare")
        for text in ("Hi", "Hello"):
            push_files(conn, project_id=project.id, files=[("greeter.yaml", prompt_file(text))], actor="a")
    principal = Principal("key_dev", project.id, "developer")
    outcome = await promote(store, principal, "greeter", PromotionRequest(2), Answers({}))
    assert outcome.moved and outcome.comparison is not None and not outcome.comparison.gated
    assert "without a gate" in outcome.message
