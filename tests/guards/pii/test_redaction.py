"""redact(): mask, hash and drop; spans from several entities; overlapping spans merged."""

from __future__ import annotations

import pytest

from pilothouse.guards.pii import PiiScanner, redact
from pilothouse.guards.pii.redaction import merge_spans, value_hash
from pilothouse.guards.scanner import Finding, ScanContext
from pilothouse.guards.secrets import SecretsScanner

TEXT = "Mail jane@example.com or call (415) 555-2671; card 4539988915720591."


def findings(text: str) -> list[Finding]:
    return PiiScanner(ner="rules").find(text)


def test_mask_puts_a_placeholder_per_entity() -> None:
    assert redact(TEXT, findings(TEXT)) == "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>; card <CREDIT_CARD>."


def test_drop_removes_the_values() -> None:
    assert redact(TEXT, findings(TEXT), "drop") == "Mail  or call ; card ."


def test_hash_is_stable_salted_and_links_equal_values() -> None:
    text = "from a@b.io to c@d.io, cc a@b.io"
    out = redact(text, findings(text), "hash", salt="k1")
    first, second, third = (part.split(">")[0] for part in out.split("<EMAIL_ADDRESS:")[1:])
    assert first == third != second
    assert first == value_hash("a@b.io", "k1") and len(first) == 10
    assert redact(text, findings(text), "hash", salt="k1") == out  # deterministic
    assert redact(text, findings(text), "hash", salt="k2") != out  # the salt keys it
    assert "a@b.io" not in out


def test_overlapping_and_touching_spans_are_merged() -> None:
    text = "abcdefghij"
    spans = [
        Finding("PERSON", 1, 4, 0.6),
        Finding("STREET_ADDRESS", 3, 6, 0.7),  # overlaps the first: one span, named after the surer one
        Finding("PHONE_NUMBER", 6, 8, 0.5),  # touches it: still one span
    ]
    assert redact(text, spans) == "a<STREET_ADDRESS>ij"
    assert [(s.start, s.end) for s in merge_spans(spans, len(text))] == [(1, 8)]


def test_findings_of_two_scanners_redact_together() -> None:
    text = "key sk-ant-api03-" + "a1B2" * 20 + " belongs to jane@example.com"
    both = [*SecretsScanner().find(text), *findings(text)]
    assert redact(text, both) == "key <ANTHROPIC_API_KEY> belongs to <EMAIL_ADDRESS>"


def test_spans_outside_the_text_are_clipped() -> None:
    assert redact("abc", [Finding("X", 2, 99, 1.0), Finding("Y", -5, 0, 1.0)]) == "ab<X>"


def test_unknown_mode_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown redaction"):
        redact("abc", [], "blur")


@pytest.mark.parametrize("how", ["mask", "hash", "drop"])
def test_scanner_verdict_uses_its_how_option(how: str) -> None:
    verdict = PiiScanner(how=how, ner="rules").scan(TEXT, ScanContext())
    assert verdict.redacted == redact(TEXT, verdict.findings, how)
    assert verdict.score == max(f.score for f in verdict.findings)
    assert "4539988915720591" not in (verdict.redacted or "")


def test_clean_text_comes_back_unchanged() -> None:
    verdict = PiiScanner(ner="rules").scan("nothing personal here", ScanContext())
    assert (verdict.score, verdict.findings, verdict.redacted) == (0.0, (), "nothing personal here")
