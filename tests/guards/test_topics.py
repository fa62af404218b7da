"""The denied-topics scanner: embedding similarity to operator-written topics."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.guards.scanner import ScanContext
from pilothouse.guards.topics import DeniedTopicsScanner

pytestmark = pytest.mark.model
TOPICS = [
    {
        "name": "legal_advice",
        "description": "giving legal advice about lawsuits, contracts, suing someone or court cases",
        "examples": ["Can I sue my landlord for not returning my deposit?", "Is this clause in my contract legal?"],
    },
    {
        "name": "medical_dosing",
        "description": "advice on medication doses, prescriptions and how much of a drug to take",
        "examples": ["How many milligrams of ibuprofen can I take in a day?"],
    },
]
CTX = ScanContext()


@pytest.fixture(scope="module")
def scanner() -> DeniedTopicsScanner:
    return DeniedTopicsScanner(topics=TOPICS)


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("My landlord kept my deposit. Can I take him to court over it?", "legal_advice"),
        ("What is the maximum dose of paracetamol for an adult?", "medical_dosing"),
    ],
)
def test_text_on_a_denied_topic_is_a_finding_naming_it(scanner: DeniedTopicsScanner, text: str, topic: str) -> None:
    verdict = scanner.scan(text, CTX)
    assert [f.kind for f in verdict.findings] == [topic]
    assert verdict.score >= scanner.threshold


@pytest.mark.parametrize(
    "text",
    ["What is a good recipe for banana bread?", "Explain how a hash table handles collisions.", "Hello!", ""],
)
def test_text_off_every_topic_passes(scanner: DeniedTopicsScanner, text: str) -> None:
    verdict = scanner.scan(text, CTX)
    assert not verdict.found and verdict.score < scanner.threshold


def test_one_off_topic_paragraph_in_a_long_text_is_found_at_its_place(scanner: DeniedTopicsScanner) -> None:
    filler = "The weather this week will be sunny with light winds in the afternoon. " * 12
    denied = "By the way, you can take up to 4000 milligrams of paracetamol per day."
    text = f"{filler}\n\n{denied}\n\n{filler}"
    findings = scanner.scan(text, CTX).findings
    assert [f.kind for f in findings] == ["medical_dosing"]
    assert findings[0].start <= text.index(denied) < findings[0].end


def test_without_topics_everything_passes() -> None:
    verdict = DeniedTopicsScanner().scan("Can I sue my landlord?", CTX)
    assert verdict.score == 0.0 and not verdict.found


def test_the_threshold_decides(scanner: DeniedTopicsScanner) -> None:
    text = "Can I sue my landlord for the deposit?"
    assert DeniedTopicsScanner(topics=TOPICS, threshold=0.99).scan(text, CTX).found is False
    assert DeniedTopicsScanner(topics=TOPICS, threshold=0.2).scan(text, CTX).found is True


@pytest.mark.parametrize(
    "topics",
    [
        "legal",
        [{"description": "no name"}],
        [{"name": "x"}],
        [{"name": "x", "description": "d", "examples": "not a list"}],
        [{"name": "x", "description": "d", "colour": "red"}],
        [{"name": "x", "description": "d"}, {"name": "x", "description": "e"}],
        [42],
    ],
)
def test_malformed_topics_are_refused(topics: Any) -> None:
    with pytest.raises(ValueError):
        DeniedTopicsScanner(topics=topics)
