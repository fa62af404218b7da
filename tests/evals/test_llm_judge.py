"""The rubric judge's own logic with a scripted transport (the model's replies are queued): readable verdicts in
the forms small models write, a malformed reply retried with the reason and then reported as a failed judgement
(never a zero), repeated judging with agreement, and bad options refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from pilothouse.evals.judges.parse import JudgeParseError, parse_verdict
from pilothouse.evals.judges.transport import JudgeCallFailed, current_transport
from pilothouse.evals.metrics import Example, MetricSpecError, build_metric

EXAMPLE = Example(output="Paris.", input="Capital of France?", expected="Paris")


class Scripted:
    def __init__(self, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        self.calls.append([dict(m) for m in messages])
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def script() -> Iterator[Any]:
    tokens = []

    def use(*replies: str | Exception) -> Scripted:
        found = Scripted(*replies)
        tokens.append(current_transport.set(found))
        return found

    yield use
    for token in reversed(tokens):
        current_transport.reset(token)


def _judge(**options: Any) -> Any:
    return build_metric("llm_judge", {"criteria": "The answer is correct and brief.", **options})


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ('{"score": 5, "reason": "right"}', 5),
        ('Sure! ```json\n{"score": 4, "reason": "ok"}\n```', 4),
        ("{'score': 2, 'reason': 'single quotes'}", 2),
        ("Score: 3/5 because it is partly right", 3),
    ],
)
def test_verdicts_in_the_forms_small_models_write(reply: str, score: int) -> None:
    assert parse_verdict(reply, low=1, high=5).score == score


def test_a_score_off_the_scale_is_not_a_verdict() -> None:
    with pytest.raises(JudgeParseError, match="outside the scale"):
        parse_verdict('{"score": 9}', low=1, high=5)


def test_a_malformed_reply_is_retried_with_the_reason(script: Any) -> None:
    scripted = script("It looks fine to me.", '{"score": 5, "reason": "correct"}')
    found = _judge().score(EXAMPLE)
    assert found.value == 1.0 and found.passed is True and "correct" in found.explanation
    retry = scripted.calls[1]
    assert retry[-2] == {"role": "assistant", "content": "It looks fine to me."}
    assert "could not be read: no verdict found" in retry[-1]["content"]
    assert "Reference answer:\nParis" in scripted.calls[0][1]["content"]


def test_a_judge_that_never_answers_readably_fails_instead_of_scoring_zero(script: Any) -> None:
    script("hmm", "still hmm", "no")
    found = _judge(retries=2).score(EXAMPLE)
    assert found.value is None and found.passed is None
    assert found.explanation.startswith("judge failed: no readable verdict after 3 tries")


def test_a_failed_model_call_fails_the_judgement(script: Any) -> None:
    script(JudgeCallFailed("429: budget exhausted"))
    found = _judge().score(EXAMPLE)
    assert found.value is None and "budget exhausted" in found.explanation


def test_repeated_judging_aggregates_and_reports_agreement(script: Any) -> None:
    replies = ['{"score": 4}', '{"score": 4}', "garbage", '{"score": 2}', '{"score": 5}']
    script(*replies)
    found = _judge(samples=4, retries=1).score(EXAMPLE)
    assert found.details["scores"] == [4.0, 4.0, 2.0, 5.0]
    assert found.value == pytest.approx((3.75 - 1) / 4)
    assert found.details["agreement"] == 0.5 and found.details["failed_samples"] == []
    script('{"score": 2}', '{"score": 4}', '{"score": 4}')
    majority = _judge(samples=3, aggregate="majority").score(EXAMPLE)
    assert majority.value == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"criteria": None}, "'criteria' is required"),
        ({"scale": [5, 1]}, "scale"),
        ({"samples": 20}, "samples"),
        ({"aggregate": "median"}, "mean or majority"),
        ({"temperature": 3}, "temperature"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricSpecError, match=message):
        build_metric("llm_judge", {"criteria": "x", **options})
