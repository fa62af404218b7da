"""The scanner protocol: one method that inspects a text with its role and context and returns a verdict.

A scanner is a class registered under a name (`registry.py`). It is built once from its options (keyword
arguments; a policy's `options:` mapping) and then called from many requests, possibly from several threads
at once, so `scan` must not keep per-call state on the instance. `scan` is synchronous CPU work; the guard
stages run it inline for short texts and in a worker thread for long ones.

Scores are in [0, 1]: how sure the scanner is that the text violates what it checks (1: certain). Whether
that is acted on is the policy's decision (its threshold and action), not the scanner's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool", "document"]
"""Who wrote the text: a chat message's role, or `document` for retrieved content (RAG chunks)."""

Direction = Literal["input", "output"]
"""`input`: text on its way to a model (prompts, documents, tool results); `output`: a model's answer."""

Mode = Literal["direct", "indirect"]
"""`direct`: the text comes from the caller. `indirect`: it comes from a third party (a retrieved document, a
web page, a tool's result) and should carry no instructions at all; injection scanners are stricter there."""


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a scanner may know about the text besides the text itself."""

    role: Role = "user"
    direction: Direction = "input"
    mode: Mode = "direct"
    system_prompt: str | None = None
    """The system prompt of the call (system-prompt leakage scanners compare the output with it)."""
    canary: str | None = None
    """A token planted in the system prompt; its appearance in an output is a leak."""
    json_schema: Mapping[str, Any] | None = None
    """The schema a structured output must satisfy (`response_format`)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Anything else the caller wants scanners to see (project, model, prompt name)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found: its kind (`EMAIL_ADDRESS`, `instruction_override`, ...), where, and how sure.

    `start`/`end` are character offsets into the scanned text (`text[start:end]` is what was found); a finding
    about the whole text (a classifier's judgement) spans all of it."""

    kind: str
    start: int
    end: int
    score: float
    detail: str = ""
    """A short human-readable reason. Never the sensitive content itself (it may be logged and stored)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A scanner's answer for one text."""

    scanner: str
    score: float
    """The highest confidence of a violation, in [0, 1]; 0 when nothing was found."""
    findings: tuple[Finding, ...] = ()
    redacted: str | None = None
    """The text with what was found masked, for scanners that can redact (PII, secrets); None otherwise."""

    @property
    def found(self) -> bool:
        return bool(self.findings)


@runtime_checkable
class Scanner(Protocol):
    """Inspects one text. Implementations set `name` (the registry name) and `redacts` (whether verdicts
    carry a redacted text when something was found)."""

    name: ClassVar[str]
    redacts: ClassVar[bool]

    def scan(self, text: str, ctx: ScanContext) -> Verdict: ...


def clean_verdict(scanner: str, text: str, *, redacts: bool) -> Verdict:
    """The verdict for a text where nothing was found (a redacting scanner returns the text unchanged)."""
    return Verdict(scanner=scanner, score=0.0, findings=(), redacted=text if redacts else None)
