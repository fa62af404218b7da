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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pilothouse.guards.policy.engine import CompiledPolicy
from pilothouse.guards.policy.masking import replace_spans
from pilothouse.guards.policy.model import StorageMode
from pilothouse.guards.scanner import ScanContext, Scanner
from pilothouse.tracing.model import TraceRecord

_CTX = ScanContext(role="user", direction="input")

STRUCTURAL = frozenset({"role", "type", "object", "finish_reason", "model", "id", "tool_call_id"})
"""Keys whose string values are protocol vocabulary or generated ids, not content: not scanned (an id is
random enough to look like a secret, and scanning them costs as much as the content)."""


@dataclass(frozen=True, slots=True)
class StoragePlan:
    """The storage redaction of one call: each policy's mode and scanners, in policy order."""

    steps: tuple[tuple[StorageMode, tuple[Scanner, ...]], ...]
    scanner_ids: frozenset[int] = field(init=False, repr=False, compare=False)
    """The ids of every step's scanners: a text all of them already found clean (GuardState.clean) is kept as is,
    without running the steps."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scanner_ids", frozenset(id(s) for _, scanners in self.steps for s in scanners))

    @classmethod
    def of(cls, policies: Sequence[CompiledPolicy]) -> StoragePlan | None:
        steps = tuple(
            (p.policy.storage.mode, p.storage) for p in policies if p.policy.storage is not None and p.storage
        )
        return cls(steps) if steps else None

    def redact_text(
        self,
        text: str,
        kinds: set[str],
        memo: dict[str, tuple[str, frozenset[str]]] | None = None,
        clean: set[tuple[int, str]] | None = None,
    ) -> str:
        """`text` redacted by every step; `memo` (one trace's) reuses the result for a text seen before (the
        same messages sit on several spans), so each distinct text is scanned once per trace."""
        if clean and all((sid, text) in clean for sid in self.scanner_ids):
            return text  # every scanner found it clean already: no step changes it
        if memo is not None and text in memo:
            redacted, found = memo[text]
            kinds |= found
            return redacted
        seen: set[str] = set()
        redacted = text
        for mode, scanners in self.steps:
            redacted = _apply(mode, scanners, redacted, seen, clean or set())
        kinds |= seen
        if memo is not None:
            memo[text] = (redacted, frozenset(seen))
        return redacted

    def redact_value(
        self,
        value: Any,
        kinds: set[str],
        memo: dict[str, tuple[str, frozenset[str]]] | None = None,
        clean: set[tuple[int, str]] | None = None,
    ) -> Any:
        """`value` (JSON-like) with every string redacted, except the values of STRUCTURAL keys. A dict or list
        none of whose strings changed is returned as is (not copied); one with a change is a copy."""
        if isinstance(value, str):
            return self.redact_text(value, kinds, memo, clean) if value else value
        if isinstance(value, dict):
            copied: dict[Any, Any] | None = None
            for k, v in value.items():
                if k in STRUCTURAL and isinstance(v, str):
                    continue
                new = self.redact_value(v, kinds, memo, clean)
                if new is not v:
                    if copied is None:
                        copied = dict(value)
                    copied[k] = new
            return value if copied is None else copied
        if isinstance(value, list):
            items: list[Any] | None = None
            for i, v in enumerate(value):
                new = self.redact_value(v, kinds, memo, clean)
                if new is not v:
                    if items is None:
                        items = list(value)
                    items[i] = new
            return value if items is None else items
        if isinstance(value, tuple):
            return [self.redact_value(v, kinds, memo, clean) for v in value]
        return value

    def redact_trace(self, trace: TraceRecord, clean: set[tuple[int, str]] | None = None) -> set[str]:
        """Redact the content of every span of `trace` in place; returns the kinds found. `clean`: (scanner,
        text) pairs the call's guard rules already found clean (GuardState.clean), not scanned again."""
        kinds: set[str] = set()
        memo: dict[str, tuple[str, frozenset[str]]] = {}
        for span in trace.spans:
            if span.kind == "guard":
                continue
            if span.input is not None:
                span.input = self.redact_value(span.input, kinds, memo, clean)
            if span.output is not None:
                span.output = self.redact_value(span.output, kinds, memo, clean)
        if kinds and trace.spans:
            trace.spans[0].attributes["pilothouse.guard.storage_redacted"] = sorted(kinds)
        return kinds


def _apply(
    mode: StorageMode, scanners: Sequence[Scanner], text: str, kinds: set[str], clean: set[tuple[int, str]]
) -> str:
    scanners = [s for s in scanners if (id(s), text) not in clean]
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
