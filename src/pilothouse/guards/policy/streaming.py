"""Guarding a streamed answer as it flows: a hold-back window for local findings, whole-text checks for the rest.

The answer arrives in small pieces, and a card number or a key may be split over several of them, so no piece
can be released the moment it arrives. `HoldBack` keeps the last `window` characters unreleased; once
`window + step` are pending it scans what is pending (the new text plus the held overlap) once with each
**local** rule (scanners whose findings are short spans: PII, secrets, links, system-prompt leaks, the
canary). Clean text, the common case, is released as it is after that one scan. When something was found,
the cut moves back to where a redact or block finding starts (never through it), a block hit stops the
stream at once, and the text before the cut is run through the local rules (`engine.evaluate`, so
redactions apply to it). A match of up to `window` characters is therefore always seen whole before any of
it is released.

Rules whose scanners judge a whole text (classifiers: injection, toxicity, topics, code) are not run on
fragments: they run over the text released so far at checkpoints (from `first_checkpoint` characters, then
each time it doubled, so their cost stays within about twice one scan of the answer) and once over the whole
answer at `finish`, before the last held text goes out. Scanners that need the complete answer
(`json_schema`) run at `finish` only. A block from either ends the stream; a redaction by them can only
apply to what is still held at `finish` (the rest was sent), so use block for them on streams. A scanner class
may declare its own `stream_scope` (`"local"`, `"whole"`, `"end"`); unknown scanners are local.

A canary planted in the system prompt (`ScanContext.canary`) is never cut through and never released: it is
replaced by `canary.MASK` whatever the rules decide.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pilothouse.guards.policy import canary
from pilothouse.guards.policy.engine import CompiledRule, Evaluation, GuardRun, RuleRecord, evaluate
from pilothouse.guards.scanner import ScanContext

DEFAULT_WINDOW = 64
"""Characters held back: longer than any card number, IBAN, e-mail address or API key in practice."""

StreamScope = Literal["local", "whole", "end"]
_SCOPES: dict[str, StreamScope] = {
    "json_schema": "end",
    "injection": "whole",
    "injection_classifier": "whole",
    "toxicity": "whole",
    "denied_topics": "whole",
    "code": "whole",
}


def stream_scope(rule: CompiledRule) -> StreamScope:
    """How a rule's scanner is run on a stream: on the held window (`local`), on the text so far at
    checkpoints (`whole`), or on the complete answer only (`end`)."""
    declared = getattr(rule.scanner, "stream_scope", None)
    if declared in ("local", "whole", "end"):
        return declared  # type: ignore[no-any-return]
    return _SCOPES.get(rule.rule.scanner, "local")


@dataclass(frozen=True, slots=True)
class Release:
    """What may be sent now: the (redacted) text, or the block hit that ends the stream."""

    text: str
    blocked: RuleRecord | None = None


class HoldBack:
    """Scans one streamed text. Not thread-safe: one per stream."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        ctx: ScanContext,
        *,
        window: int = DEFAULT_WINDOW,
        first_checkpoint: int = 512,
        clean: set[tuple[int, str]] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("the hold-back window is at least 1 character")
        self.rules = tuple(rules)
        self.ctx = ctx
        self.window = window
        self.step = window
        """Released about every `step` characters, so the local rules scan each character about twice."""
        self.run = GuardRun()
        self.clean = clean
        """Collects the (scanner, text) pairs found clean (runtime.GuardState.clean): an answer short enough to
        be scanned whole is then not scanned again by storage redaction."""
        self.pending = ""
        self.released = 0
        """Characters of the original text released so far."""
        self.local = tuple(r for r in self.rules if stream_scope(r) == "local")
        self.whole = tuple(r for r in self.rules if stream_scope(r) == "whole")
        self.final = tuple(r for r in self.rules if stream_scope(r) != "local")
        self._acting = tuple(r for r in self.local if not r.shadow_mode and r.rule.action in ("redact", "block"))
        self._sent: list[str] = []
        self._sent_chars = 0
        self._checkpoint = first_checkpoint
        self._cut_ms: dict[int, float] = {}

    def feed(self, piece: str) -> Release:
        """Add the next piece; returns what may be released now (often nothing)."""
        if self.run.blocked is not None:
            return Release("", self.run.blocked)
        self.pending += piece
        if len(self.pending) < self.window + self.step:
            return Release("")
        release = self._step(len(self.pending) - self.window)
        if release.blocked is None and self.whole and self._sent_chars >= self._checkpoint:
            self._checkpoint = 2 * self._sent_chars
            blocked = self._whole_text(self.whole, "".join(self._sent)).blocked
            if blocked is not None:
                return Release("", blocked)
        return release

    def finish(self) -> Release:
        """The stream ended: scan and release what is still held; run the whole-text rules over the answer."""
        if self.run.blocked is not None:
            return Release("", self.run.blocked)
        sent = "".join(self._sent)
        tail = self._release(len(self.pending)) if self.pending else Release("")
        for key, ms in self._cut_ms.items():  # the time spent finding safe cuts counts as the rule's too
            if key in self.run.records:
                self.run.records[key].latency_ms += ms
        self._cut_ms.clear()
        if tail.blocked is not None or not self.final:
            return tail
        evaluation = self._whole_text(self.final, sent + tail.text)
        if evaluation.blocked is not None:
            return Release("", evaluation.blocked)
        if evaluation.text.startswith(sent):  # a redaction that falls in the tail still held
            return Release(evaluation.text[len(sent) :])
        return tail

    def _whole_text(self, rules: Sequence[CompiledRule], text: str) -> Evaluation:
        evaluation = evaluate(rules, text, self.ctx, self.clean)
        self.run.add(evaluation)
        return evaluation

    def _step(self, cut: int) -> Release:
        """Scan what is pending once per local rule; release the text before `cut` as it is when nothing was
        found, else move the cut back off any finding, stop at a block hit, and evaluate what goes out."""
        found = False
        spans: list[tuple[int, int]] = []
        block_seen = False
        clean: list[RuleRecord] = []
        for rule in self.local:
            started = time.perf_counter()
            verdict = rule.scanner.scan(self.pending, self.ctx)
            elapsed = (time.perf_counter() - started) * 1000.0
            clean.append(RuleRecord(rule, 0.0, elapsed, "allow", set(), 1))
            if verdict.score <= 0.0 and not verdict.findings:
                continue
            found = True
            key = id(rule)
            self._cut_ms[key] = self._cut_ms.get(key, 0.0) + elapsed
            if rule in self._acting and verdict.score >= rule.rule.threshold:
                spans.extend((f.start, f.end) for f in verdict.findings)
                block_seen = block_seen or rule.rule.action == "block"
        if self.ctx.canary:
            marks = canary.spans(self.pending, self.ctx.canary)
            spans.extend(marks)
            found = found or bool(marks)
        if not found:  # nothing anywhere in the window: the text before the cut goes out unchanged
            for record in clean:
                self.run.add_record(record)
            return self._send(cut, self.pending[:cut])
        cut = _back_off(cut, spans)
        if block_seen:  # stop as soon as a block rule sees its match, not a window later
            evaluation = evaluate(self.local, self.pending, self.ctx)
            if evaluation.blocked is not None:
                self.run.add(evaluation)
                self.pending = ""
                return Release("", self.run.blocked)
        if cut <= 0:
            return Release("")
        return self._release(cut)

    def _release(self, cut: int) -> Release:
        evaluation = evaluate(self.local, self.pending[:cut], self.ctx, self.clean)
        self.run.add(evaluation)
        if evaluation.blocked is not None:
            self.pending = ""
            return Release("", self.run.blocked)
        text = evaluation.text if self.ctx.canary is None else canary.strip(evaluation.text, self.ctx.canary)
        return self._send(cut, text)

    def _send(self, cut: int, text: str) -> Release:
        self.pending = self.pending[cut:]
        self.released += cut
        self._sent.append(text)
        self._sent_chars += len(text)
        return Release(text)


def _back_off(cut: int, spans: Sequence[tuple[int, int]]) -> int:
    """`cut`, moved back to the start of any span it would split (repeatedly: spans may overlap)."""
    moved = True
    while moved:
        moved = False
        for start, end in spans:
            if start < cut < end:
                cut, moved = start, True
    return cut
