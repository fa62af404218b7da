"""Person names with spaCy's NER (the `pii-ner` extra, which both install commands include): it finds names the
rules miss, and the default stays the rules (NER costs ~55 ms per 512 tokens)."""

from __future__ import annotations

import pytest

from pilothouse.guards.pii import ner
from pilothouse.guards.pii.scanner import PiiScanner
from pilothouse.guards.scanner import ScanContext

TEXT = "Yesterday Barack Obama spoke to reporters in Chicago."


@pytest.fixture(autouse=True)
def _spacy_installed() -> None:
    assert ner.available(), "spaCy or its English model is missing: install the pii-ner extra (scripts/install.sh)"


def persons(scanner: PiiScanner) -> list[str]:
    return [TEXT[f.start : f.end] for f in scanner.scan(TEXT, ScanContext()).findings if f.kind == "PERSON"]


def test_ner_finds_a_name_the_rules_miss() -> None:
    assert persons(PiiScanner(ner="rules")) == []
    assert persons(PiiScanner(ner="spacy")) == ["Barack Obama"]
    assert persons(PiiScanner(ner="auto")) == ["Barack Obama"]


def test_the_default_is_the_rules() -> None:
    assert not PiiScanner().uses_ner
    redacted = PiiScanner(ner="spacy").scan(TEXT, ScanContext()).redacted
    assert redacted is not None and "Obama" not in redacted
