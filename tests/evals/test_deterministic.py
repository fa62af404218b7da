"""The deterministic metrics compare with the example's expected answer when given no value, and give the
scores a person computes by hand."""

from __future__ import annotations

import pytest

from pilothouse.evals.metrics import Example, build_metric


def score(name: str, output: str, expected: object = None, **options: object) -> tuple[object, bool | None]:
    result = build_metric(name, options).score(Example(output=output, expected=expected))
    return result.value, result.passed


def test_without_a_value_they_use_the_expected_answer() -> None:
    assert score("contains", "The capital is Paris.", "Paris") == (True, True)
    assert score("contains", "The capital is Lyon.", "Paris") == (False, False)
    assert score("exact_match", " Paris \n", "Paris") == (True, True)
    assert score("exact_match", "paris", ["Lyon", "Paris"], ignore_case=True) == (True, True)
    assert score("regex", "order 1234", r"\d{4}") == (True, True)
    assert score("not_contains", "fine", "sorry") == (True, True)


def test_without_a_value_or_expected_answer_they_do_not_judge() -> None:
    for name in ("contains", "exact_match", "regex", "fuzzy_match", "numeric", "json_schema", "rouge_l"):
        result = build_metric(name).score(Example(output="anything"))
        assert result.value is None and result.passed is None and "expected" in result.explanation


def test_fuzzy_match_is_a_similarity() -> None:
    value, passed = score("fuzzy_match", "The Eiffel tower, in Paris!", "the eiffel tower in paris")
    assert value == 1.0 and passed
    value, passed = score("fuzzy_match", "colour", "color")
    assert 0.8 < float(value) < 1.0 and passed  # type: ignore[arg-type]
    assert score("fuzzy_match", "abc", "xyz") == (0.0, False)


def test_rouge_l_is_the_lcs_f1() -> None:
    # candidate 6 words, reference 6 words, LCS "the cat sat on the mat" minus one word = 5
    value, passed = score("rouge_l", "the cat sat on a mat", "the cat sat on the mat", threshold=0.8)
    assert value == pytest.approx(round(5 / 6, 4)) and passed


def test_numeric_tolerance() -> None:
    assert score("numeric", "The total is 2,099.00 dollars.", "2099") == (True, True)
    assert score("numeric", "about 104", 100, tolerance=5) == (True, True)
    assert score("numeric", "about 106", 100, tolerance=5) == (False, False)
    assert score("numeric", "about 106", 100, tolerance=0.1, relative=True) == (True, True)
    assert score("numeric", "no idea", 100) == (False, False)


def test_length_bounds() -> None:
    assert score("length", "one two three", min_words=2, max_chars=20) == (True, True)
    result = build_metric("length", {"max_words": 2}).score(Example(output="one two three"))
    assert result.passed is False and "breaks max_words 2" in result.explanation


def test_json_schema_from_the_expected_answer() -> None:
    assert score("json_schema", '{"a": 1}', {"type": "object", "required": ["a"]}) == (True, True)
    assert score("json_schema", '{"b": 1}', {"type": "object", "required": ["a"]}) == (False, False)
