"""Groundedness with the real MiniLM embeddings and the shipped claim classifier: faithful answers pass, answers
with an invented figure or name fail on that claim, and an answer without context or claims is not judged."""

from __future__ import annotations

from pilothouse.evals.metrics import Example, build_metric
from pilothouse.evals.metrics.claims import claims

CONTEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall and was the "
    "tallest man-made structure in the world until 1930.",
    "Gustave Eiffel's company designed and built the tower. About 7 million people visit it every year.",
)


def judge(answer: str) -> tuple[float | None, bool | None, str]:
    score = build_metric("groundedness").score(Example(output=answer, context=CONTEXT))
    return score.number, score.passed, score.explanation


def test_a_faithful_answer_is_grounded() -> None:
    value, passed, explanation = judge(
        "The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall."
    )
    assert passed is True and value is not None and value >= 0.5, explanation
    assert explanation.startswith("2 of 2 claims supported")


def test_an_invented_figure_makes_the_answer_ungrounded() -> None:
    value, passed, explanation = judge(
        "The Eiffel Tower was completed in 1889 for the World's Fair. It is 480 metres tall."
    )
    assert passed is False and value is not None and value < 0.5
    assert "480 metres" in explanation  # the least supported claim is named


def test_an_unrelated_claim_is_unsupported() -> None:
    value, passed, _ = judge("The tower was painted green by Leonardo da Vinci during the Renaissance.")
    assert passed is False and value is not None and value < 0.5


def test_details_list_each_claim() -> None:
    score = build_metric("groundedness").score(
        Example(output="It was completed in 1889. I hope this helps!", context=CONTEXT)
    )
    assert [c["claim"] for c in score.details["claims"]] == ["It was completed in 1889."]


def test_nothing_to_judge() -> None:
    metric = build_metric("groundedness")
    assert metric.score(Example(output="It is 330 metres tall.")).value is None  # no context
    assert metric.score(Example(output="Why?", context=CONTEXT)).value is None  # no claims


def test_claims_skip_questions_and_pleasantries() -> None:
    text = "Sure! The tower is in Paris. Is that what you meant? Let me know if you need more. It opened in 1889."
    assert claims(text) == ["The tower is in Paris.", "It opened in 1889."]
