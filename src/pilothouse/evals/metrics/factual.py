"""`factual_correctness`: does the answer state what the reference answer states, and nothing against it?

The groundedness machinery run both ways between the answer and the reference (`expected`; a list of
references is read as one text). Each claim of the answer is

- `supported` when the groundedness model finds it in the reference (support >= 0.5, its trained cut);
- `contradicted` when it is not supported although the reference's closest sentence holds at least half of its
  content words: the same statement about the same thing with something changed (a number, a name, a term);
- `unsupported` otherwise: something the reference does not speak about.

Each claim of the reference is covered when the answer supports it or it supports one of the answer's claims (the
answer states part of it); the others are `missing`. The value is the F1 of claim precision
(supported answer claims over answer claims) and claim recall (reference claims the answer covers over
reference claims), as claim-based factual-correctness metrics usually define it. No pass threshold is claimed to
be calibrated, so `passed` is set only when a `threshold` is given.

Limits: the support model compares words, numbers, names and MiniLM similarity, not meaning: a correct answer
worded very differently from the reference scores low, and a negation ("is not") that keeps every word of the
reference is not seen as a contradiction. Numbers, names and swapped terms are what it catches best.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.claims import claims
from pilothouse.evals.metrics.context import SUPPORTED, supported_by
from pilothouse.evals.metrics.groundedness import MAX_CLAIMS, support_probabilities
from pilothouse.evals.metrics.grounding_features import FEATURES, ContextIndex
from pilothouse.evals.metrics.options import excerpt, fraction

__all__ = ["SAME_SUBJECT", "FactualCorrectness"]

SAME_SUBJECT = 0.5
"""Share of an unsupported claim's content words in the reference's closest sentence above which the claim is
read as contradicting the reference rather than adding to it."""
_RECALL_BEST = FEATURES.index("recall_best")


def _default_embed(texts: list[str]) -> FloatArray:
    from pilothouse.guards.embedder import embed

    return embed(texts)


def _reference(example: Example) -> str | None:
    value = example.expected
    items = value if isinstance(value, list) else [value]
    texts = [str(v).strip() for v in items if v is not None and not isinstance(v, bool) and str(v).strip()]
    return "\n".join(texts) or None


class FactualCorrectness:
    """Options: `threshold` (optional, 0..1)."""

    name: ClassVar[str] = "factual_correctness"
    family: ClassVar[Family] = "rag"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, threshold: float | None = None, embed: Callable[[list[str]], FloatArray] | None = None) -> None:
        self.threshold = None if threshold is None else fraction(threshold, "'threshold'")
        if embed is not None and not callable(embed):
            raise MetricSpecError("'embed' must be a function from texts to unit vectors")
        self.embed = embed or _default_embed
        self.label = self.name + ("" if threshold is None else f" >= {threshold}")

    def score(self, example: Example) -> Score:
        reference = _reference(example)
        if reference is None:
            return unjudged(self.name, "no reference answer (`expected`) to check the answer against")
        stated = claims(example.output)[:MAX_CLAIMS]
        if not stated:
            return unjudged(self.name, "the answer states nothing to check (no claims)")
        wanted = claims(reference)[:MAX_CLAIMS] or [reference]
        features = ContextIndex([reference], self.embed).features(stated)
        support = support_probabilities(features)
        verdicts = []
        for p, row in zip(support, features, strict=True):
            if p >= SUPPORTED:
                verdicts.append("supported")
            else:
                verdicts.append("contradicted" if row[_RECALL_BEST] >= SAME_SUBJECT else "unsupported")
        # a reference claim is covered when the answer supports it, or it supports one of the answer's claims (the
        # answer states part of it: "refunds within 30 days" for "refunds within 30 days of purchase")
        covered = [
            p >= SUPPORTED or max(supported_by(stated, [claim], self.embed)) >= SUPPORTED
            for claim, p in zip(wanted, supported_by(wanted, [example.output], self.embed), strict=True)
        ]
        precision = verdicts.count("supported") / len(stated)
        recall = sum(covered) / len(wanted)
        value = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        missing = [c for c, hit in zip(wanted, covered, strict=True) if not hit]
        explanation = (
            f"{verdicts.count('supported')} of {len(stated)} claims supported by the reference, "
            f"{verdicts.count('contradicted')} contradicted, {verdicts.count('unsupported')} not in it; "
            f"{len(missing)} of {len(wanted)} reference claims missing"
        )
        contradicted = [c for c, v in zip(stated, verdicts, strict=True) if v == "contradicted"]
        if contradicted:
            explanation += f"; contradicted: {excerpt(contradicted[0], 100)}"
        details: dict[str, Any] = {
            "claims": [
                {"claim": c, "verdict": v, "support": round(float(p), 4)}
                for c, v, p in zip(stated, verdicts, support, strict=True)
            ],
            "missing": missing,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "weakest_support": round(float(np.min(support)), 4),
        }
        passed = None if self.threshold is None else value >= self.threshold
        return Score(self.name, round(value, 4), explanation, passed, details)
