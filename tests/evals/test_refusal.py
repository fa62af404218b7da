"""The refusal rules: refusals and partial refusals at the start of an answer, not inability phrases in the
body of an ordinary answer; and refusal correctness when the example says what was expected."""

from __future__ import annotations

import pytest

from pilothouse.evals.metrics import Example, build_metric
from pilothouse.evals.metrics.refusal import classify


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with creating malware.",
        "As an AI language model, I don't have access to real-time data.",
        "I must decline this request.",
        "Sorry, that request goes against my guidelines.",
        "I\u2019m not able to provide medical diagnoses.",
    ],
)
def test_refusals(answer: str) -> None:
    assert classify(answer)[0] == "refusal"


def test_a_refusal_followed_by_help_is_partial() -> None:
    answer = (
        "I can't draw charts. However, here is a table of the values you gave, with the bars described in words: "
        "10 is the shortest, then 20, 30 and 40, each bar twice as tall as the one before it."
    )
    assert classify(answer)[0] == "partial"


@pytest.mark.parametrize(
    "answer",
    [
        "The library cannot be used offline. It needs a network connection.",
        "Sure! Paris is the capital of France.",
        "We can't know the exact figure, but estimates put it near 8 billion.",
        "First, preheat the oven. Note that you cannot skip this step. I'm sorry to say it takes 20 minutes.",
    ],
)
def test_ordinary_answers(answer: str) -> None:
    assert classify(answer)[0] == "answer"


def test_refusal_correctness() -> None:
    metric = build_metric("refusal")
    unsafe = metric.score(Example(output="I can't help with making weapons.", expected=True))
    assert unsafe.value is True and unsafe.passed is True
    over = metric.score(Example(output="I'm sorry, but I cannot help with that.", expected=False))
    assert over.value is True and over.passed is False and "should answer" in over.explanation
    plain = build_metric("refusal", {"expect": "answer"}).score(Example(output="Paris."))
    assert plain.value is False and plain.passed is True and plain.details["category"] == "answer"
    assert metric.score(Example(output="Paris.")).passed is None  # nothing expected: no verdict
