"""The RAG context metrics, factual correctness against a reference, the coherence judge and the counterfactual
swaps, on small hand-made examples whose verdicts a person can check (the real MiniLM embedder)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from pilothouse.evals.judges.spend import metered, record
from pilothouse.evals.judges.transport import current_transport
from pilothouse.evals.metrics import Example, MetricSpecError, build_metric
from pilothouse.evals.metrics.counterfactual import GROUPS, Swapper
from pilothouse.evals.metrics.variant_call import VariantCallFailed, current_variant

EXPECTED_CONTEXT = (
    "Refunds are available within 30 days of purchase. Refunds are paid within 5 business days.",
    "Shipping is free for orders over 50 dollars.",
)
REFUNDS = "Refunds are available within 30 days of purchase."
SHIPPING = "Shipping is free for orders over 50 dollars."
OFFICE = "Our office is in Berlin and opens at 9 am every weekday."
REFERENCE = "Refunds are available within 30 days of purchase. They are paid within 5 business days."


def _rag(retrieved: tuple[str, ...]) -> Example:
    return Example(output="-", input="refunds?", context=EXPECTED_CONTEXT, retrieved=retrieved)


def test_context_recall_is_the_share_of_expected_statements_retrieved() -> None:
    metric = build_metric("context_recall")
    partial = metric.score(_rag((SHIPPING, REFUNDS, OFFICE)))
    assert partial.value == pytest.approx(2 / 3, abs=1e-3)
    assert "Refunds are paid within 5 business days" in partial.explanation
    assert metric.score(_rag(EXPECTED_CONTEXT)).value == 1.0
    assert metric.score(_rag((OFFICE,))).value == 0.0
    assert partial.passed is None  # no calibrated cut is claimed
    assert build_metric("context_recall", {"threshold": 0.5}).score(_rag((OFFICE,))).passed is False


def test_context_precision_rewards_relevant_passages_ranked_first() -> None:
    metric = build_metric("context_precision")
    first = metric.score(_rag((SHIPPING, REFUNDS, OFFICE)))
    last = metric.score(_rag((OFFICE, REFUNDS, SHIPPING)))
    assert first.value == 1.0 and first.details["relevant_ranks"] == [1, 2]
    assert last.value == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-3)
    assert metric.score(_rag((OFFICE,))).value == 0.0


@pytest.mark.parametrize("name", ["context_precision", "context_recall"])
def test_context_metrics_do_not_judge_without_both_sides(name: str) -> None:
    metric = build_metric(name)
    nothing_retrieved = metric.score(Example(output="x", context=EXPECTED_CONTEXT))
    assert nothing_retrieved.value is None and "no retrieved passages" in nothing_retrieved.explanation
    nothing_expected = metric.score(Example(output="x", retrieved=(REFUNDS,)))
    assert nothing_expected.value is None and "no expected context" in nothing_expected.explanation


@pytest.mark.parametrize(
    ("answer", "value", "verdicts", "missing"),
    [
        (REFERENCE, 1.0, ["supported", "supported"], 0),
        ("You can get a refund within 30 days.", 2 / 3, ["supported"], 1),  # right, but says half
        ("You can get a refund within 60 days. They are paid within 5 business days.", 0.5, None, 1),
        ("Penguins live in Antarctica and eat fish.", 0.0, ["unsupported"], 2),
    ],
)
def test_factual_correctness_sorts_claims_against_the_reference(
    answer: str, value: float, verdicts: list[str] | None, missing: int
) -> None:
    score = build_metric("factual_correctness").score(Example(output=answer, expected=REFERENCE))
    assert score.value == pytest.approx(value, abs=1e-3), score
    found = [c["verdict"] for c in score.details["claims"]]
    if verdicts is not None:
        assert found == verdicts
    else:
        assert found == ["contradicted", "supported"]
        assert "contradicted: 'You can get a refund within 60 days.'" in score.explanation
    assert len(score.details["missing"]) == missing


def test_factual_correctness_needs_a_reference_and_a_claim() -> None:
    metric = build_metric("factual_correctness")
    assert metric.score(Example(output="It is 30 days.")).value is None
    assert metric.score(Example(output="Hi!", expected=REFERENCE)).value is None


def test_swaps_go_both_ways_keep_case_and_are_not_undone() -> None:
    swap = Swapper(GROUPS["gender"])
    assert (
        swap("He told his Wife that HE and Mr Smith were men.")
        == "She told her Husband that SHE and Ms Smith were women."
    )
    assert swap(swap("Should he become a nurse?")) == "Should he become a nurse?"
    custom = build_metric("counterfactual_bias", {"groups": ["religion"], "swaps": {"Jamal": "Greg"}})
    assert custom.swap("Jamal went to church") == "Greg went to mosque"  # type: ignore[attr-defined]


class Caller:
    def __init__(self, reply: Callable[[str], str]) -> None:
        self.reply = reply
        self.asked: list[str] = []

    def rerun(self, rewrite: Callable[[str], str]) -> str:
        question = rewrite("Should he become a nurse?")
        self.asked.append(question)
        record(None)
        return self.reply(question)


@pytest.fixture
def variant() -> Iterator[Callable[[Callable[[str], str]], Caller]]:
    tokens = []

    def use(reply: Callable[[str], str]) -> Caller:
        caller = Caller(reply)
        tokens.append(current_variant.set(caller))
        return caller

    yield use
    for token in reversed(tokens):
        current_variant.reset(token)


def test_counterfactual_bias_compares_the_swapped_answer(variant: Any) -> None:
    metric = build_metric("counterfactual_bias", {"threshold": 0.1})
    example = Example(
        output="Yes, he can become a nurse if he likes caring for people.", input="Should he become a nurse?"
    )
    fair = variant(lambda q: "Yes, she can become a nurse if she likes caring for people.")
    with metered() as spend:
        same = metric.score(example)
    assert fair.asked == ["Should she become a nurse?"] and spend.calls == 1
    assert same.value == 0.0 and same.passed is True
    variant(lambda q: "I'm sorry, but I can't help with that.")
    unequal = metric.score(example)
    assert unequal.details["refusal_mismatch"] is True and unequal.passed is False
    assert unequal.value is not None and unequal.value > 0.2


def test_counterfactual_bias_is_not_judged_without_a_variant_or_a_term(variant: Any) -> None:
    metric = build_metric("counterfactual_bias")
    alone = metric.score(Example(output="Yes.", input="Should he become a nurse?"))
    assert alone.value is None and "server-side variant" in alone.explanation

    def fails(question: str) -> str:
        raise VariantCallFailed("429: budget exhausted")

    variant(fails)
    assert metric.score(Example(output="Yes.", input="What is 2 + 2?")).explanation.startswith("no demographic term")
    failed = metric.score(Example(output="Yes.", input="Should he become a nurse?"))
    assert failed.value is None and "429: budget exhausted" in failed.explanation


@pytest.mark.parametrize(
    ("options", "message"),
    [({"groups": ["caste"]}, "unknown group"), ({"swaps": {"a": 1}}, "'swaps'"), ({"groups": "gender"}, "list")],
)
def test_counterfactual_bias_refuses_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricSpecError, match=message):
        build_metric("counterfactual_bias", options)


class Scripted:
    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        self.prompts.append(messages[-1]["content"])
        return self.replies.pop(0)


def test_coherence_is_the_rubric_judge_with_a_fixed_rubric() -> None:
    scripted = Scripted('{"score": 2, "reason": "jumps between topics"}', "no idea", "still nothing")
    token = current_transport.set(scripted)
    try:
        metric = build_metric("coherence", {"model": "judge-model", "retries": 1})
        score = metric.score(Example(output="Cats. The GDP rose. Therefore blue.", input="Tell me about cats."))
        assert score.value == pytest.approx(0.25) and score.passed is False
        assert "Coherence:" in scripted.prompts[0] and "contradict" in scripted.prompts[0]
        failed = metric.score(Example(output="x", input="y"))
        assert failed.value is None and failed.explanation.startswith("judge failed")
        with pytest.raises(MetricSpecError):
            build_metric("coherence", {"criteria": "mine"})
    finally:
        current_transport.reset(token)
    assert metric.planned_requests(Example(output="x"))[0]["model"] == "judge-model"  # type: ignore[attr-defined]


POLICY = """\
name: answers-clean
output:
  - {scanner: pii, action: redact}
  - {scanner: toxicity, action: block}
"""


def test_policy_compliance_runs_the_policys_output_rules_over_the_answer() -> None:
    metric = build_metric("policy_compliance", {"policy": POLICY})
    clean = metric.score(Example(output="Your parcel arrives on Monday."))
    assert clean.value is True and clean.passed is True and "complies with answers-clean" in clean.explanation
    leaked = metric.score(Example(output="Write to jane.doe@example.com or call +1 415 555 0100."))
    assert leaked.value is False and leaked.explanation.startswith("redact by pii")
    assert [r["decision"] for r in leaked.details["rules"]] == ["redact", "allow"]
    assert "jane.doe" not in str(leaked.details)
    shadow = build_metric("policy_compliance", {"policy": POLICY + "mode: shadow\n"})
    assert shadow.score(Example(output="Write to jane.doe@example.com.")).value is True  # shadow only reports


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (None, "'policy' is required"),
        ("name: x\noutput:\n  - {scanner: nope, action: block}\n", "not a valid guard policy"),
        ("name: x\ninput:\n  - {scanner: pii, action: block}\n", "no output rules"),
    ],
)
def test_policy_compliance_refuses_a_bad_policy(policy: str | None, message: str) -> None:
    with pytest.raises(MetricSpecError, match=message):
        build_metric("policy_compliance", {"policy": policy})
