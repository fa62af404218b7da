"""Every assertion kind of scenario tests: what passes, what fails and why, and which specs are refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pilothouse.prompts.testing.assertions import (
    ASSERTION_KINDS,
    AssertionOutcome,
    Execution,
    SpecError,
    build_assertion,
    parse_json_output,
    register_assertion,
)


def run(kind: str, spec: Any, output: str = "", **measures: Any) -> AssertionOutcome:
    return build_assertion(kind, spec).check(Execution(output=output, **measures))


def test_the_documented_kinds_are_registered() -> None:
    expected = {"contains", "not_contains", "regex", "json_schema", "max_tokens", "max_latency_ms", "max_cost_usd"}
    assert expected | {"equals"} <= set(ASSERTION_KINDS)


# -- contains / not_contains ---------------------------------------------------------------------------


def test_contains_a_string_is_case_sensitive_by_default() -> None:
    assert run("contains", "Paris", "The capital is Paris.").passed
    outcome = run("contains", "paris", "The capital is Paris.")
    assert not outcome.passed
    assert "missing 'paris'" in outcome.detail and "The capital is Paris." in outcome.detail
    assert outcome.kind == "contains" and outcome.assertion == "contains 'paris'"


def test_contains_ignore_case() -> None:
    outcome = run("contains", {"value": "PARIS", "ignore_case": True}, "the capital is paris")
    assert outcome.passed and outcome.assertion == "contains 'PARIS' (ignore case)"


def test_contains_a_list_needs_every_item_unless_any() -> None:
    assert run("contains", ["red", "blue"], "red and blue").passed
    outcome = run("contains", ["red", "blue"], "red only")
    assert not outcome.passed and "missing 'blue'" in outcome.detail
    assert run("contains", {"value": ["red", "blue"], "any": True}, "red only").passed
    assert not run("contains", {"value": ["green", "blue"], "any": True}, "red only").passed


def test_contains_numbers_are_text() -> None:
    assert run("contains", 42, "the answer is 42").passed


def test_not_contains() -> None:
    assert run("not_contains", "sorry", "Here you go.").passed
    outcome = run("not_contains", ["sorry", "cannot"], "Sorry, I cannot.")
    assert not outcome.passed and outcome.detail.startswith("found 'cannot'")
    assert not run("not_contains", {"value": "SORRY", "ignore_case": True}, "sorry").passed
    # any: true fails only when all of them appear
    assert run("not_contains", {"value": ["a", "z"], "any": True}, "abc").passed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "at least one string"),
        ("", "must not be empty"),
        ({"value": "x", "ignorecase": True}, "unknown option(s) ignorecase"),
        ({"ignore_case": True}, "'value' is required"),
        ({"value": "x", "ignore_case": "yes"}, "'ignore_case' must be true or false"),
        ({"value": [{"a": 1}]}, "each value must be a string"),
        (None, "must be a string, got NoneType"),
    ],
)
def test_contains_bad_specs(spec: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_assertion("contains", spec)


# -- regex / equals ------------------------------------------------------------------------------------


def test_regex_searches() -> None:
    outcome = run("regex", r"\d{3}", "call 555 now")
    assert outcome.passed and outcome.detail == "matched '555'"
    assert not run("regex", r"^\d+$", "call 555").passed
    assert run("regex", {"pattern": "^yes", "ignore_case": True}, "YES!").passed
    assert run("regex", {"pattern": "^b$", "multiline": True}, "a\nb\nc").passed
    assert not run("regex", "^b$", "a\nb\nc").passed


def test_regex_invalid_pattern_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="invalid regular expression"):
        build_assertion("regex", "(unclosed")
    with pytest.raises(SpecError, match="'pattern' is required"):
        build_assertion("regex", {"ignore_case": True})


def test_equals_strips_and_can_ignore_case() -> None:
    assert run("equals", "Paris", "  Paris\n").passed
    assert not run("equals", "Paris", "Paris.").passed
    assert run("equals", {"value": "paris", "ignore_case": True}, "PARIS").passed
    assert not run("equals", {"value": "Paris", "strip": False}, " Paris").passed
    assert run("equals", 4, "4").passed
    with pytest.raises(SpecError, match="must be a string"):
        build_assertion("equals", ["a"])


# -- json_schema -----------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "minLength": 1}, "score": {"type": "integer", "enum": [1, 2, 3]}},
    "required": ["answer"],
}


def test_json_schema_valid_output() -> None:
    outcome = run("json_schema", SCHEMA, '{"answer": "yes", "score": 2}')
    assert outcome.passed and outcome.detail == "valid" and outcome.assertion == "json_schema (type object)"


def test_json_schema_allows_one_code_fence() -> None:
    assert run("json_schema", SCHEMA, '```json\n{"answer": "yes"}\n```').passed
    assert parse_json_output("```\n[1, 2]\n```") == [1, 2]


def test_json_schema_not_json() -> None:
    outcome = run("json_schema", SCHEMA, "Sure! Here it is")
    assert not outcome.passed and outcome.detail.startswith("not JSON")


def test_json_schema_names_the_failing_place() -> None:
    missing = run("json_schema", SCHEMA, '{"score": 2}')
    assert not missing.passed and "'answer' is a required property" in missing.detail
    wrong = run("json_schema", SCHEMA, '{"answer": "x", "score": 7}')
    assert not wrong.passed and wrong.detail.startswith("at /score:")


def test_json_schema_bad_schemas() -> None:
    with pytest.raises(SpecError, match="must be a JSON Schema object"):
        build_assertion("json_schema", "object")
    with pytest.raises(SpecError, match="invalid JSON Schema"):
        build_assertion("json_schema", {"type": "objekt"})


# -- budgets ---------------------------------------------------------------------------------------------


def test_max_tokens() -> None:
    assert run("max_tokens", 10, output_tokens=10).passed
    over = run("max_tokens", 10, output_tokens=11)
    assert not over.passed and over.detail == "11 output tokens"
    assert not run("max_tokens", 10).passed  # unknown counts never pass a budget
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(SpecError, match="positive integer"):
            build_assertion("max_tokens", bad)


def test_max_latency_ms() -> None:
    assert run("max_latency_ms", 500, latency_ms=499.9).passed
    slow = run("max_latency_ms", 500, latency_ms=1234.4)
    assert not slow.passed and slow.detail == "1234 ms"
    assert run("max_latency_ms", 0.5, latency_ms=0.4).passed
    assert run("max_latency_ms", 100).detail == "the latency is unknown"
    with pytest.raises(SpecError, match="positive number"):
        build_assertion("max_latency_ms", 0)


def test_max_cost_usd_is_exact_and_needs_a_known_cost() -> None:
    assert run("max_cost_usd", "0.001", cost_usd=Decimal("0.001")).passed
    assert not run("max_cost_usd", 0.001, cost_usd=Decimal("0.0010001")).passed
    assert run("max_cost_usd", 0, cost_usd=Decimal(0)).passed
    unknown = run("max_cost_usd", 1)
    assert not unknown.passed and "unknown" in unknown.detail
    for bad in (-1, "abc", "nan", None):
        with pytest.raises(SpecError):
            build_assertion("max_cost_usd", bad)


# -- the registry ----------------------------------------------------------------------------------------


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match=r"unknown assertion 'contain'; known: .*contains"):
        build_assertion("contain", "x")


def test_new_kinds_register_and_duplicates_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pilothouse.prompts.testing.assertions.ASSERTION_KINDS", dict(ASSERTION_KINDS))

    @register_assertion("shorter_than")
    class ShorterThan:
        def __init__(self, spec: Any) -> None:
            self.limit = int(spec)

        def check(self, result: Execution) -> AssertionOutcome:
            ok = len(result.output) < self.limit
            return AssertionOutcome("shorter_than", f"shorter_than {self.limit}", ok, f"{len(result.output)} chars")

    assert run("shorter_than", 5, "abc").passed
    with pytest.raises(ValueError, match="already registered"):
        register_assertion("contains")(ShorterThan)
