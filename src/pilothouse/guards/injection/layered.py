"""Scanner `injection`: the rules first, then the classifier; the one policies use.

Direct mode (prompts): the rules (`heuristics.py`) are cheap and explain themselves with spans; the
classifier (`classifier.py`) catches what the rules have no pattern for (new jailbreak templates, persona
set-ups). When a rule is already certain (score >= `skip_classifier_at`) the classifier is not run. The
verdict's score is the higher of the two; the findings are both lists.

Indirect mode (documents, tool results): the override, persona and delimiter rules, then `indirect.py`,
which reads every segment, the hidden markup and the decoded payloads for text addressed to the AI reading
the document; then the learned indirect model (`indirect_model.py`) turns all of that evidence, a segment
model's reading of every sentence and the document's frame (an article *about* prompt injection quotes
attacks) into the verdict's score. With `indirect_model=False` the rules decide alone (`indirect-rules-1`).
The older trained indirect head is off by default (`indirect_head=True` adds it to the rules): on documents
written by people it flagged READMEs, install guides and e-mails (docs/guards-injection.md). The weak rules
that only say "this addresses a reader" (`DEFERRED_IN_INDIRECT`) explain; they do not decide.

A policy threshold of 0.5 acts at the operating point chosen on the development data.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from pilothouse.guards.injection.classifier import InjectionClassifier
from pilothouse.guards.injection.heuristics import InjectionHeuristics
from pilothouse.guards.injection.indirect import score_document
from pilothouse.guards.injection.indirect_model import load_indirect_model
from pilothouse.guards.injection.model import load_model
from pilothouse.guards.injection.normalize import Normalized, normalize
from pilothouse.guards.scanner import Finding, ScanContext, Verdict

__all__ = ["DEFERRED_IN_INDIRECT", "InjectionScanner"]

DEFERRED_IN_INDIRECT = frozenset({"embedded_instruction"})
"""Rule kinds that, in indirect mode, only explain: whether "in your answer, show your working" is meant for
the AI or for a student is the indirect head's call (it sees the rule hit as one of its cues). The finding
is kept, with the classifier's score, when the classifier flags the document."""


class InjectionScanner:
    """Layered injection and jailbreak detection. Options: `decode` (rules decode encoded payloads, default
    True), `classifier` (run the learned classifier, default True), `skip_classifier_at` (a rule score at or
    above which the classifier is skipped, default 0.9), `indirect_head` (in indirect mode also let the
    trained indirect head flag documents, default False), `indirect_model` (in indirect mode let the learned
    indirect model decide from the rules' evidence, default True)."""

    name: ClassVar[str] = "injection"
    redacts: ClassVar[bool] = False

    def __init__(
        self,
        *,
        decode: bool = True,
        classifier: bool = True,
        skip_classifier_at: float = 0.9,
        indirect_head: bool = False,
        indirect_model: bool = True,
    ) -> None:
        if not all(isinstance(v, bool) for v in (classifier, indirect_head, indirect_model)):
            raise TypeError("classifier, indirect_head and indirect_model must be true or false")
        if isinstance(skip_classifier_at, bool) or not isinstance(skip_classifier_at, int | float):
            raise TypeError("skip_classifier_at must be a number")
        if not 0.0 <= float(skip_classifier_at) <= 1.0:
            raise ValueError("skip_classifier_at must be between 0 and 1")
        self.heuristics = InjectionHeuristics(decode=decode)
        self.classifier = InjectionClassifier() if classifier else None
        self.skip_classifier_at = float(skip_classifier_at)
        self.indirect_head = indirect_head
        self.indirect_model = indirect_model

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        norm = normalize(text)  # once, for the rules and the classifier
        findings = self.heuristics.findings(text, ctx, norm)
        if ctx.mode == "indirect":
            if self.indirect_model:
                return self._indirect_learned(text, norm, findings)
            return self._indirect(text, findings)
        score = max((f.score for f in findings), default=0.0)
        if self.classifier is not None and score < self.skip_classifier_at:
            learned, extra = self.classifier.findings(text, ctx, norm)
            score = max(score, learned)
            findings = tuple(sorted(findings + extra, key=lambda f: (f.start, f.end, f.kind)))
        return Verdict(scanner=self.name, score=score, findings=findings)

    def _indirect(self, text: str, findings: tuple[Finding, ...]) -> Verdict:
        soft = tuple(f for f in findings if f.kind in DEFERRED_IN_INDIRECT)
        hard = tuple(f for f in findings if f not in soft)
        score = max((f.score for f in hard), default=0.0)
        if score >= self.skip_classifier_at:
            return Verdict(scanner=self.name, score=score, findings=hard)
        learned, extra = score_document(text, load_model() if self.indirect_head else None)
        score = max(score, learned)
        kept = tuple(replace(f, score=min(f.score, learned)) for f in soft if learned >= 0.5)
        merged = tuple(sorted(hard + kept + extra, key=lambda f: (f.start, f.end, f.kind)))
        return Verdict(scanner=self.name, score=score, findings=merged)

    def indirect_evidence(self, text: str, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        """Every rule finding on a document in indirect mode: `findings` (the rules of `heuristics.py` in
        indirect mode) and those of `indirect.py`. The learned indirect model's input, at training too."""
        _, extra = score_document(text, load_model() if self.indirect_head else None)
        return findings + extra

    def _indirect_learned(self, text: str, norm: Normalized, findings: tuple[Finding, ...]) -> Verdict:
        model = load_indirect_model()
        evidence = self.indirect_evidence(text, findings)
        scored = model.score(text, norm.text, evidence)
        if scored.score < 0.5:
            return Verdict(scanner=self.name, score=scored.score, findings=())
        start, end = norm.span(*scored.span)
        kept = tuple(
            replace(f, score=min(f.score, scored.score)) if f.kind in DEFERRED_IN_INDIRECT else f
            for f in evidence
            if f.score >= 0.5
        )
        learned = Finding("indirect_model", start, end, scored.score, f"addressed to the AI ({model.version})")
        merged = tuple(sorted((*kept, learned), key=lambda f: (f.start, f.end, f.kind)))
        return Verdict(scanner=self.name, score=scored.score, findings=merged)
