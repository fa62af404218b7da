"""Ingestion-time safety: indirect prompt injection scanning of chunks and PII redaction of documents.

Injection: every chunk is scanned by the guards' `injection` scanner in indirect mode (`role="document"`:
third-party text should carry no instructions at all). A chunk scoring at or above the collection's threshold
gets `injection` in its `_flags` (which travel with it into retrieval spans); under the `quarantine` policy the
whole document is kept out of the indexes. PII: under the `redact` policy, sections are masked by the `pii`
scanner before chunking, so neither the index, the embeddings nor a prompt ever holds the personal data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import ScanContext, Scanner
from pilothouse.rag.chunking import Section
from pilothouse.rag.settings import CollectionSettings

INJECTION_FLAG = "injection"
PII_FLAG = "pii_redacted"
_DOCUMENT = ScanContext(role="document", direction="input", mode="indirect")

_scanners: dict[str, Scanner] = {}
_lock = threading.Lock()


def _scanner(name: str) -> Scanner:
    with _lock:
        found = _scanners.get(name)
        if found is None:
            found = build_scanner(name)
            _scanners[name] = found
        return found


@dataclass(frozen=True, slots=True)
class SafetyPolicy:
    injection: str
    threshold: float
    pii: str

    @classmethod
    def of(cls, settings: CollectionSettings) -> SafetyPolicy:
        return cls(settings.injection, settings.injection_threshold, settings.pii)

    def redact(self, sections: tuple[Section, ...]) -> tuple[tuple[Section, ...], bool]:
        """The sections with personal data masked (under `redact`), and whether anything was masked."""
        if self.pii != "redact":
            return sections, False
        scanner = _scanner("pii")
        out: list[Section] = []
        changed = False
        for section in sections:
            verdict = scanner.scan(section.text, _DOCUMENT)
            if verdict.found and verdict.redacted is not None:
                out.append(Section(verdict.redacted, section.headings, section.page))
                changed = True
            else:
                out.append(section)
        return tuple(out), changed

    def injection_flags(self, texts: list[str]) -> list[bool]:
        """For each chunk text: whether an indirect injection was found in it (all False under `off`)."""
        if self.injection == "off":
            return [False] * len(texts)
        scanner = _scanner("injection")
        return [scanner.scan(text, _DOCUMENT).score >= self.threshold for text in texts]
