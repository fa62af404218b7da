"""`bleu` and `semantic_similarity` against the reference answer: values checked by hand, paraphrases scored
above unrelated answers by the real MiniLM, and no reference means not judged."""

from __future__ import annotations

import math

import pytest

from pilothouse.evals.metrics import Example, build_metric
from pilothouse.evals.metrics.reference import sentence_bleu


def test_bleu_by_hand() -> None:
    assert sentence_bleu("the cat is on the mat", ["the cat is on the mat"]) == pytest.approx(1.0)
    # 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3 (smoothed to 0.1/3); same length, no brevity penalty
    expected = math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(1 / 4) + math.log(0.1 / 3)) / 4)
    assert sentence_bleu("the cat sat on the mat", ["the cat is on the mat"]) == pytest.approx(expected)
    # a short answer pays the brevity penalty against the closest reference length
    short = sentence_bleu("the cat", ["the cat is on the mat", "a cat"])
    assert short == pytest.approx(1.0 * math.exp((0 + 0 + 2 * math.log(0.1)) / 4))
    assert sentence_bleu("", ["x"]) == 0.0


def test_bleu_metric_uses_every_expected_text() -> None:
    metric = build_metric("bleu", {"threshold": 0.5})
    found = metric.score(Example(output="Paris is the capital.", expected=["Lyon", "Paris is the capital."]))
    assert found.value == 1.0 and found.passed is True
    assert build_metric("bleu").score(Example(output="x")).value is None


def test_semantic_similarity_prefers_a_paraphrase() -> None:
    metric = build_metric("semantic_similarity", {"threshold": 0.6})
    reference = "You can return the product within 30 days for a full refund."
    paraphrase = metric.score(
        Example(output="Refunds are given in full if you send it back inside a month.", expected=reference)
    )
    unrelated = metric.score(Example(output="Our office is closed on public holidays.", expected=reference))
    assert paraphrase.number is not None and unrelated.number is not None
    assert paraphrase.number > unrelated.number + 0.2
    assert paraphrase.passed is True and unrelated.passed is False
    assert build_metric("semantic_similarity").score(Example(output="", expected="x")).value is None
