"""The JSON-schema scanner: parse errors with their offset, validation errors with their JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.guards.scanner import ScanContext
from pilothouse.guards.structured import JsonSchemaScanner, json_path

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]},
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}
CTX = ScanContext(role="assistant", direction="output", json_schema=SCHEMA)


def test_valid_json_passes_also_inside_one_json_fence() -> None:
    scanner = JsonSchemaScanner()
    assert not scanner.scan('{"name": "a", "items": [{"price": 1.5}]}', CTX).found
    assert not scanner.scan('```json\n{"name": "a"}\n```', CTX).found
    assert JsonSchemaScanner(allow_fenced=False).scan('```json\n{"name": "a"}\n```', CTX).found


def test_each_violation_names_its_path_and_keyword_not_the_value() -> None:
    text = '{"items": [{"price": "SECRET-VALUE"}, {}], "extra": 1}'
    verdict = JsonSchemaScanner().scan(text, CTX)
    details = [f.detail for f in verdict.findings]
    assert verdict.score == 1.0
    assert "$: fails 'required' ([\"name\"])" in details
    assert "$.items[0].price: fails 'type' (\"number\")" in details
    assert "$.items[1]: fails 'required' ([\"price\"])" in details
    assert any(d.startswith("$: fails 'additionalProperties'") for d in details)
    assert all("SECRET-VALUE" not in d for d in details)
    assert all(f.kind == "schema_violation" and (f.start, f.end) == (0, len(text)) for f in verdict.findings)


def test_text_that_is_not_json_points_at_where_parsing_stopped() -> None:
    text = 'Sure! {"name": "a"}'
    (finding,) = JsonSchemaScanner().scan(text, CTX).findings
    assert finding.kind == "invalid_json" and finding.start == 0
    truncated = '{"name": "a", "items": ['
    (finding,) = JsonSchemaScanner().scan(truncated, CTX).findings
    assert finding.kind == "invalid_json" and finding.start == len(truncated)


def test_without_a_schema_everything_passes() -> None:
    verdict = JsonSchemaScanner().scan("not json at all", ScanContext())
    assert verdict.score == 0.0 and not verdict.found


def test_an_invalid_schema_is_reported_not_raised() -> None:
    (finding,) = JsonSchemaScanner().scan("{}", ScanContext(json_schema={"type": 12})).findings
    assert finding.kind == "invalid_schema"


def test_the_draft_named_by_the_schema_is_used() -> None:
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "number",
        "maximum": 5,
        "exclusiveMaximum": True,
    }
    assert JsonSchemaScanner().scan("5", ScanContext(json_schema=draft4)).found
    assert not JsonSchemaScanner().scan("4", ScanContext(json_schema=draft4)).found


def test_deeply_nested_input_is_a_finding_not_a_crash() -> None:
    text = "[" * 100_000 + "]" * 100_000
    verdict = JsonSchemaScanner().scan(text, ScanContext(json_schema={"type": "array"}))
    assert verdict.found


def test_max_errors_caps_the_findings() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    assert len(JsonSchemaScanner(max_errors=3).scan("[1,2,3,4,5,6]", ScanContext(json_schema=schema)).findings) == 3


@pytest.mark.parametrize(("path", "expected"), [((), "$"), (("a", 0, "b"), "$.a[0].b"), (("odd key",), '$["odd key"]')])
def test_json_path(path: tuple[Any, ...], expected: str) -> None:
    assert json_path(path) == expected
