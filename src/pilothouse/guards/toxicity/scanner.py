"""The `toxicity` scanner: hateful, demeaning or abusive text, input or output.

Each window of a few sentences (`guards/sentences.py`) is scored by the shipped classifier (`model.py`); slurs
and insults aimed at the reader are flagged by the lexicon (`lexicon.py`) whatever the classifier says. The
verdict's score is the highest window probability (or lexicon score); a window at or above `threshold` is a
finding. Trained on statements about women (ToxiGen) and a small self-written set about other groups, so it
is weaker on other groups, on sarcasm and on languages other than English (see docs/guards-content.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pilothouse.guards.embedder import embed
from pilothouse.guards.scanner import Finding, ScanContext, Verdict
from pilothouse.guards.sentences import scan_pieces
from pilothouse.guards.toxicity.lexicon import lexicon_hits
from pilothouse.guards.toxicity.model import feature_matrix, load_model


class ToxicityScanner:
    """Options: `threshold` (default: the one chosen when the model was trained), `use_lexicon` (default true)."""

    name: ClassVar[str] = "toxicity"
    redacts: ClassVar[bool] = False
    conformance_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, threshold: float | None = None, use_lexicon: bool = True) -> None:
        if threshold is not None and not 0.0 < float(threshold) <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = None if threshold is None else float(threshold)
        self.use_lexicon = bool(use_lexicon)

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        model = load_model()
        threshold = self.threshold if self.threshold is not None else model.threshold
        pieces = scan_pieces(text)
        findings: list[Finding] = []
        score = 0.0
        if pieces:
            texts = [p.text for p in pieces]
            probabilities = model.probabilities(feature_matrix(embed(texts), texts))
            for piece, probability in zip(pieces, probabilities, strict=True):
                p = round(float(probability), 6)
                score = max(score, p)
                if p >= threshold:
                    findings.append(Finding("toxicity", piece.start, piece.end, p, f"classifier {model.version}"))
        if self.use_lexicon:
            for hit in lexicon_hits(text):
                score = max(score, hit.score)
                findings.append(Finding(hit.kind, hit.start, hit.end, hit.score, "lexicon"))
        findings.sort(key=lambda f: (f.start, f.end, f.kind))
        return Verdict(scanner=self.name, score=score, findings=tuple(findings))
