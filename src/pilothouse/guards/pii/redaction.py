"""Redacting spans of a text: mask them, hash them, or drop them.

Shared by the PII and secrets scanners (their verdicts' `redacted` text), the policy engine (the `redact`
action) and trace storage (content is redacted before it is stored or exported). Findings from several
scanners may be passed together: overlapping or touching spans are merged first, so no fragment of a value
survives between two placeholders.

- `mask`: each span becomes `<KIND>` (`<EMAIL_ADDRESS>`).
- `hash`: each span becomes `<KIND:1a2b3c4d5e>`, a keyed hash of the value, so equal values stay linkable
  across messages and traces without being readable. Pass a secret `salt` (a per-deployment key): without
  one, a value from a small space (an SSN, a phone number) can be recovered by hashing every candidate.
- `drop`: each span is removed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from pilothouse.guards.scanner import Finding

How = Literal["mask", "hash", "drop"]
HOW_CHOICES: tuple[str, ...] = get_args(How)

HASH_HEX_CHARS = 10
"""40 bits of the HMAC: enough to keep distinct values of one conversation apart, short enough to read."""


@dataclass(frozen=True, slots=True)
class MergedSpan:
    """A span to replace: the union of overlapping findings, named after the most confident of them."""

    kind: str
    start: int
    end: int


def merge_spans(findings: Iterable[Finding], text_length: int) -> list[MergedSpan]:
    """Overlapping or touching findings merged into disjoint spans, in text order, clipped to the text.

    The merged span takes the kind of its highest-scoring finding (the longer one on a tie)."""
    spans = sorted(
        ((max(0, f.start), min(text_length, f.end), f) for f in findings if min(text_length, f.end) > max(0, f.start)),
        key=lambda item: (item[0], -item[1]),
    )
    merged: list[MergedSpan] = []
    best: Finding | None = None
    start = end = 0
    for s, e, finding in spans:
        if best is not None and s <= end:
            end = max(end, e)
            if (finding.score, finding.end - finding.start) > (best.score, best.end - best.start):
                best = finding
            continue
        if best is not None:
            merged.append(MergedSpan(best.kind, start, end))
        best, start, end = finding, s, e
    if best is not None:
        merged.append(MergedSpan(best.kind, start, end))
    return merged


def value_hash(value: str, salt: str | bytes = b"") -> str:
    """The short keyed hash (HMAC-SHA256, hex) that `hash` redaction puts in place of `value`."""
    key = salt.encode() if isinstance(salt, str) else salt
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


def redact(text: str, findings: Iterable[Finding], how: str = "mask", *, salt: str | bytes = b"") -> str:
    """`text` with the spans of `findings` masked, hashed or dropped (see the module docstring).

    ValueError for an unknown `how`."""
    if how not in HOW_CHOICES:
        raise ValueError(f"unknown redaction {how!r}: use one of {', '.join(HOW_CHOICES)}")
    parts: list[str] = []
    position = 0
    for span in merge_spans(findings, len(text)):
        parts.append(text[position : span.start])
        if how == "mask":
            parts.append(f"<{span.kind}>")
        elif how == "hash":
            parts.append(f"<{span.kind}:{value_hash(text[span.start : span.end], salt)}>")
        position = span.end
    parts.append(text[position:])
    return "".join(parts)
