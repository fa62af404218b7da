"""The safety metrics are the guard scanners (same verdicts), and answer relevance uses the real MiniLM
embeddings with the calibrated threshold."""

from __future__ import annotations

from pilothouse.evals.metrics import Example, build_metric
from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import ScanContext


def test_pii_metric_agrees_with_the_scanner() -> None:
    text = "Sure, you can reach Jane at jane.doe@example.com or +1 415 555 0100."
    score = build_metric("pii").score(Example(output=text))
    verdict = build_scanner("pii").scan(text, ScanContext(role="assistant", direction="output"))
    assert score.value == round(verdict.score, 4) and score.passed is False
    assert "EMAIL_ADDRESS" in score.explanation and "jane.doe" not in score.explanation
    assert build_metric("pii").score(Example(output="The capital of France is Paris.")).passed is True


def test_toxicity_metric() -> None:
    metric = build_metric("toxicity")
    assert metric.score(Example(output="Women are stupid and should never be allowed to vote.")).passed is False
    assert metric.score(Example(output="The meeting is moved to Thursday at 10am.")).passed is True


def test_answer_relevance_separates_an_answer_from_an_answer_to_something_else() -> None:
    metric = build_metric("answer_relevance")
    question = "How do I reset my router to factory settings?"
    on_topic = metric.score(
        Example(
            input=question,
            output="Hold the reset button on the back of the router for 10 "
            "seconds until the lights blink; it restarts with the factory settings.",
        )
    )
    off_topic = metric.score(Example(input=question, output="Bake the cake at 180 degrees for 35 minutes."))
    assert on_topic.passed is True and off_topic.passed is False
    assert float(on_topic.value) > float(off_topic.value)  # type: ignore[arg-type]
    assert metric.score(Example(output="anything")).value is None  # no question: not judged
