"""Redacting trace content before the trace is stored (and so before any export or dashboard shows it).

Every string in the spans' `input` and `output` (messages, answers, embedding inputs, cached answers) is run
through the storage scanners of the call's policies: `mask` replaces each finding with the scanner's mask (or
`[KIND]` for a scanner that does not redact), `hash` with `<KIND:first 12 hex of its SHA-256>` (equal values
still correlate; this is pseudonymisation, not anonymisation: short values such as card numbers can be found
again by trying candidates), `drop` replaces the whole string with a note naming the kinds found. Guard spans
carry no content and are left alone. The kinds redacted are recorded on the trace's first span
(`pilothouse.guard.storage_redacted`), never the values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.guards.policy.engine import CompiledPolicy
from pilothouse.guards.policy.model import StorageMode
from pilothouse.guards.scanner import Finding, ScanContext, Scanner
from pilothouse.tracing.model import TraceRecord

_CTX = ScanContext(role="user", direction="input")


@dataclass(frozen=True, slots=True)
class StoragePlan:
    """The storage redaction of one call: each policy's mode and scanners, in policy order."""

    steps: tuple[tuple[StorageMode, tuple[Scanner, ...]], ...]

    @classmethod
    def of(cls, policies: Sequence[CompiledPolicy]) -> StoragePlan | None:
        steps = tuple(
            (p.policy.storage.mode, p.storage) for p in policies if p.policy.storage is not None and p.storage
        )
        return cls(steps) if steps else None

    def redact_text(self, text: str, kinds: set[str]) -> str:
        for mode, scanners in self.steps:
            text = _apply(mode, scanners, text, kinds)
        return text

    def redact_value(self, value: Any, kinds: set[str]) -> Any:
        """`value` (JSON-like) with every string redacted."""
        if isinstance(value, str):
            return self.redact_text(value, kinds) if value else value
        if isinstance(value, dict):
            return {k: self.redact_value(v, kinds) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v, kinds) for v in value]
        return value

    def redact_trace(self, trace: TraceRecord) -> set[str]:
        """Redact the content of every span of `trace` in place; returns the kinds found."""
        kinds: set[str] = set()
        for span in trace.spans:
            if span.kind == "guard":
                continue
            if span.input is not None:
                span.input = self.redact_value(span.input, kinds)
            if span.output is not None:
                span.output = self.redact_value(span.output, kinds)
        if kinds and trace.spans:
            trace.spans[0].attributes["pilothouse.guard.storage_redacted"] = sorted(kinds)
        return kinds


def _apply(mode: StorageMode, scanners: Sequence[Scanner], text: str, kinds: set[str]) -> str:
    if mode == "drop":
        found = {f.kind for s in scanners for f in s.scan(text, _CTX).findings}
        if not found:
            return text
        kinds |= found
        return f"[content dropped by the storage policy: {', '.join(sorted(found))}]"
    for scanner in scanners:
        verdict = scanner.scan(text, _CTX)
        if not verdict.findings:
            continue
        kinds |= {f.kind for f in verdict.findings}
        if mode == "mask" and verdict.redacted is not None:
            text = verdict.redacted
        else:
            text = replace_spans(text, verdict.findings, hashed=mode == "hash")
    return text


def replace_spans(text: str, findings: Sequence[Finding], *, hashed: bool) -> str:
    """`text` with each finding's span replaced (`[KIND]`, or `<KIND:hash>`); overlapping spans merge."""
    spans = sorted((f.start, f.end, f.kind) for f in findings if 0 <= f.start < f.end <= len(text))
    merged: list[list[Any]] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, kind])
    out, last = [], 0
    for start, end, kind in merged:
        value = text[start:end]
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]
        out.append(text[last:start])
        out.append(f"<{kind}:{digest}>" if hashed else f"[{kind}]")
        last = end
    out.append(text[last:])
    return "".join(out)
