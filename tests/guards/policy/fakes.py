"""Small, exact scanners for the policy tests (registered by conftest.py under `test_*` names), so the
engine, the stages and the streaming window are tested against known findings, whatever the real scanners
score."""

from __future__ import annotations

import re
from typing import ClassVar

from pilothouse.guards.scanner import Finding, ScanContext, Verdict, clean_verdict

_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(text: str, findings: list[Finding]) -> str:
    for f in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[: f.start] + f"<{f.kind}>" + text[f.end :]
    return text


class CardsAndEmails:
    """Card numbers (Luhn-valid) and e-mail addresses, masked as `<CREDIT_CARD>` / `<EMAIL_ADDRESS>`."""

    name: ClassVar[str] = "test_pii"
    redacts: ClassVar[bool] = True

    def __init__(self, emails: bool = True) -> None:
        self.emails = emails

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        findings = [
            Finding("CREDIT_CARD", m.start(), m.end(), 1.0)
            for m in _CARD.finditer(text)
            if luhn(re.sub(r"\D", "", m.group()))
        ]
        if self.emails:
            findings += [Finding("EMAIL_ADDRESS", m.start(), m.end(), 0.9) for m in _EMAIL.finditer(text)]
        if not findings:
            return clean_verdict(self.name, text, redacts=True)
        return Verdict(self.name, max(f.score for f in findings), tuple(findings), _mask(text, findings))


class Phrases:
    """Scores 1.0 when a phrase of `phrases` occurs (case-insensitive), 0 otherwise; cannot redact."""

    name: ClassVar[str] = "test_phrases"
    redacts: ClassVar[bool] = False

    def __init__(self, phrases: tuple[str, ...] | list[str] = ("ignore previous instructions",), score: float = 1.0):
        self.phrases = tuple(p.lower() for p in phrases)
        self.score = score

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        low = text.lower()
        findings = tuple(
            Finding("instruction_override", low.index(p), low.index(p) + len(p), self.score)
            for p in self.phrases
            if p in low
        )
        return Verdict(self.name, self.score if findings else 0.0, findings)


class Counting:
    """Finds nothing; records the length of every text it scans (`seen`), to measure how often a stream is
    rescanned. `scope` sets its `stream_scope` (how HoldBack runs it)."""

    name: ClassVar[str] = "test_counting"
    redacts: ClassVar[bool] = False
    seen: ClassVar[list[int]] = []

    def __init__(self, scope: str = "local") -> None:
        self.stream_scope = scope

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        Counting.seen.append(len(text))
        return clean_verdict(self.name, text, redacts=False)
