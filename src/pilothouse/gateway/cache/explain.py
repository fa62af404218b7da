"""`pilothouse cache explain`: would a question be answered with the answer cached for another, and why.

The same parts as a lookup: the cache's embedder, its contrast check (`SemanticCache.verdict`) and the
threshold that applies to the project. Unlike a lookup, the check also runs on a pair below the threshold,
so the answer says what would happen at a lower one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from pilothouse.gateway.cache.contrast import Verdict
from pilothouse.gateway.cache.semantic import Decision, SemanticCache
from pilothouse.vectors import FloatArray


@dataclass(frozen=True, slots=True)
class Explanation:
    similarity: float | None  # cosine of the two embeddings (None: a text too long to embed)
    threshold: float  # the threshold that applies
    threshold_source: str  # "project" (its override) or "default" (cache.semantic.threshold)
    contrast: Verdict | None  # the check's verdict (None: checks are off, or nothing to check)
    decision: Decision  # what a lookup's trace would record
    would_hit: bool
    answer: str  # "would hit" or "would not hit: <why>"

    def to_dict(self) -> dict[str, Any]:
        verdict = self.contrast
        return {
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "contrast": None if verdict is None else {"ok": verdict.ok, "reason": verdict.reason, "kind": verdict.kind},
            "decision": self.decision,
            "would_hit": self.would_hit,
            "answer": self.answer,
        }


def _cosine(a: FloatArray, b: FloatArray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / norms if norms else 0.0


async def explain(
    cache: SemanticCache, question: str, cached: str, *, threshold: float, threshold_source: str
) -> Explanation:
    """Whether `question` would get the answer cached for `cached` (the same partition assumed)."""
    checks = cache.settings.contrast_checks
    blank = [name for name, text in (("the question", question), ("the cached question", cached)) if not text.strip()]
    if blank:
        why = f"{' and '.join(blank)} is blank (a blank last message is not semantically cached)"
        return Explanation(None, threshold, threshold_source, None, "not_checked", False, f"would not hit: {why}")

    def work() -> tuple[FloatArray | None, FloatArray | None, Verdict | None]:
        # One thread for both texts: the model loads on first use, once.
        return cache.embed(question), cache.embed(cached), cache.verdict(question, cached) if checks else None

    a, b, verdict = await asyncio.to_thread(work)
    if a is None or b is None:
        long = " and ".join(name for name, v in (("the question", a), ("the cached question", b)) if v is None)
        why = f"{long} is longer than the embedding model's window (not semantically cached)"
        return Explanation(None, threshold, threshold_source, verdict, "not_checked", False, f"would not hit: {why}")
    similarity = _cosine(a, b)
    refused = verdict is not None and not verdict.ok
    refusal = f"the contrast check refuses it ({verdict.reason})" if verdict is not None and refused else ""
    decision: Decision
    if similarity < threshold:
        decision = "below_threshold"
        answer = f"would not hit: similarity {similarity:.4f} is below the threshold {threshold:g}"
        if refused:
            answer += f", and {refusal}"
    elif refused:
        decision, answer = "refused", f"would not hit: {refusal}"
    elif verdict is None:
        decision, answer = "not_checked", "would hit (the contrast checks are off)"
    else:
        decision, answer = "hit", "would hit"
    hit = decision in ("hit", "not_checked")
    return Explanation(similarity, threshold, threshold_source, verdict, decision, hit, answer)
