"""Guarding a streamed answer as it flows: a hold-back window.

The answer arrives in small pieces, and a card number or a key may be split over several of them, so no piece
can be released the moment it arrives. `HoldBack` keeps the last `window` characters unreleased; once more
than `window + step` are pending it releases the text before the window, but never cuts through something a
redact or block rule found (the cut moves back to where that finding starts; a block hit stops the stream at
once). A match of up to `window` characters is
therefore always seen whole before any of it is released; longer ones (a whole paragraph a classifier
judges) are seen in windows. The released text is run through every output rule (`engine.evaluate`, so
redactions apply to it and the first block hit stops the stream); what is still held is scanned at `finish`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pilothouse.guards.policy.engine import CompiledRule, GuardRun, RuleRecord, evaluate
from pilothouse.guards.scanner import ScanContext

DEFAULT_WINDOW = 64
"""Characters held back: longer than any card number, IBAN, e-mail address or API key in practice."""


@dataclass(frozen=True, slots=True)
class Release:
    """What may be sent now: the (redacted) text, or the block hit that ends the stream."""

    text: str
    blocked: RuleRecord | None = None


class HoldBack:
    """Scans one streamed text with a hold-back window. Not thread-safe: one per stream."""

    def __init__(self, rules: Sequence[CompiledRule], ctx: ScanContext, *, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("the hold-back window is at least 1 character")
        self.rules = tuple(rules)
        self.ctx = ctx
        self.window = window
        self.step = max(1, window // 2)
        """Released at most every `step` characters, so the rules run about once per `step`, not per token."""
        self.run = GuardRun()
        self.pending = ""
        self.released = 0
        """Characters of the original text released so far."""
        self._acting = tuple(r for r in self.rules if not r.shadow_mode and r.rule.action in ("redact", "block"))
        self._cut_ms: dict[int, float] = {}

    def feed(self, piece: str) -> Release:
        """Add the next piece; returns what may be released now (often nothing)."""
        if self.run.blocked is not None:
            return Release("", self.run.blocked)
        self.pending += piece
        if len(self.pending) < self.window + self.step:
            return Release("")
        cut, block_seen = self._safe_cut(len(self.pending) - self.window)
        if block_seen:  # stop as soon as a block rule sees its match, not a window later
            evaluation = evaluate(self.rules, self.pending, self.ctx)
            if evaluation.blocked is not None:
                self.run.add(evaluation)
                self.pending = ""
                return Release("", self.run.blocked)
        if cut <= 0:
            return Release("")
        return self._release(cut)

    def finish(self) -> Release:
        """The stream ended: scan and release what is still held."""
        if self.run.blocked is not None:
            return Release("", self.run.blocked)
        release = self._release(len(self.pending)) if self.pending else Release("")
        for key, ms in self._cut_ms.items():  # the time spent finding safe cuts counts as the rule's too
            if key in self.run.records:
                self.run.records[key].latency_ms += ms
        return release

    def _safe_cut(self, cut: int) -> tuple[int, bool]:
        """`cut`, moved back to the start of any finding of a redact or block rule it would split; and whether
        a block rule hit in what is pending."""
        spans: list[tuple[int, int]] = []
        block_seen = False
        for rule in self._acting:
            started = time.perf_counter()
            verdict = rule.scanner.scan(self.pending, self.ctx)
            key = id(rule)
            self._cut_ms[key] = self._cut_ms.get(key, 0.0) + (time.perf_counter() - started) * 1000.0
            if verdict.score > 0.0 and verdict.score >= rule.rule.threshold:
                spans.extend((f.start, f.end) for f in verdict.findings)
                block_seen = block_seen or rule.rule.action == "block"
        moved = True
        while moved:
            moved = False
            for start, end in spans:
                if start < cut < end:
                    cut, moved = start, True
        return cut, block_seen

    def _release(self, cut: int) -> Release:
        head, self.pending = self.pending[:cut], self.pending[cut:]
        self.released += cut
        evaluation = evaluate(self.rules, head, self.ctx)
        self.run.add(evaluation)
        if evaluation.blocked is not None:
            self.pending = ""
            return Release("", self.run.blocked)
        return Release(evaluation.text)
