"""`context_precision` and `context_recall`: did the application retrieve the passages it should have?

Both compare the passages the application retrieved for the answer (`Example.retrieved`, in rank order; a
function variant uploads them with its output) with the expected context of the item (`Example.context`). They
reuse the groundedness support model (`groundedness.py`): the expected context is cut into claims, and a claim
counts as found in a set of passages when the model gives it a support probability of at least 0.5, the cut it
was trained and measured at (docs/evaluation-metrics.md, "Measured quality").

- `context_recall`: the share of the expected context's claims that the retrieved passages support. Missing
  evidence lowers it, whatever else was retrieved.
- `context_precision`: a retrieved passage is relevant when it supports at least one claim of the expected
  context; the value is the average precision over the ranks of the relevant passages (1.0 when every relevant
  passage comes before every irrelevant one, 0 when none is relevant), as RAG evaluations usually define it.

No pass threshold is claimed to be calibrated, so `passed` is set only when a `threshold` is given. Like
groundedness, the support model reads words, numbers, names and MiniLM similarity, not logic: a passage that
paraphrases the expected context heavily may not count as supporting it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.claims import claims
from pilothouse.evals.metrics.groundedness import MAX_CLAIMS, support_probabilities
from pilothouse.evals.metrics.grounding_features import ContextIndex
from pilothouse.evals.metrics.options import fraction

__all__ = ["SUPPORTED", "ContextPrecision", "ContextRecall", "supported_by"]

SUPPORTED = 0.5
"""The groundedness model's trained cut: a claim at or above it is supported."""


def _default_embed(texts: list[str]) -> FloatArray:
    from pilothouse.guards.embedder import embed

    return embed(texts)


def supported_by(statements: list[str], passages: list[str], embed: Callable[[list[str]], FloatArray]) -> list[float]:
    """The support probability of each statement against the passages (the groundedness model)."""
    if not statements:
        return []
    found = support_probabilities(ContextIndex(passages, embed).features(statements))
    return [float(p) for p in found]


class _ContextMetric:
    family: ClassVar[Family] = "rag"
    higher_is_better: ClassVar[bool] = True
    name: ClassVar[str] = ""

    def __init__(self, threshold: float | None = None, embed: Callable[[list[str]], FloatArray] | None = None) -> None:
        self.threshold = None if threshold is None else fraction(threshold, "'threshold'")
        if embed is not None and not callable(embed):
            raise MetricSpecError("'embed' must be a function from texts to unit vectors")
        self.embed = embed or _default_embed
        self.label = self.name + ("" if threshold is None else f" >= {threshold}")

    def _inputs(self, example: Example) -> tuple[list[str], list[str]] | str:
        """(expected claims, retrieved passages), or why the example cannot be judged."""
        retrieved = [p for p in example.retrieved if p.strip()]
        expected = [p for p in example.context if p.strip()]
        if not expected:
            return "no expected context on the item to compare the retrieved passages with"
        if not example.retrieved:
            return "no retrieved passages: the application must return them with its output"
        statements = [c for passage in expected for c in claims(passage)][:MAX_CLAIMS]
        if not statements:
            return "the expected context states nothing to look for (no claims)"
        return statements, retrieved

    def _verdict(self, value: float) -> bool | None:
        return None if self.threshold is None else value >= self.threshold


class ContextRecall(_ContextMetric):
    """Options: `threshold` (optional, 0..1)."""

    name: ClassVar[str] = "context_recall"

    def score(self, example: Example) -> Score:
        found = self._inputs(example)
        if isinstance(found, str):
            return unjudged(self.name, found)
        statements, retrieved = found
        support = supported_by(statements, retrieved, self.embed) if retrieved else [0.0] * len(statements)
        hits = [p >= SUPPORTED for p in support]
        value = sum(hits) / len(statements)
        missing = [s for s, hit in zip(statements, hits, strict=True) if not hit]
        explanation = f"{sum(hits)} of {len(statements)} expected statements found in the retrieved passages"
        if missing:
            explanation += f"; first missing: {missing[0][:100]!r}"
        details: dict[str, Any] = {
            "statements": [{"statement": s, "support": round(p, 4)} for s, p in zip(statements, support, strict=True)],
        }
        return Score(self.name, round(value, 4), explanation, self._verdict(value), details)


class ContextPrecision(_ContextMetric):
    """Options: `threshold` (optional, 0..1)."""

    name: ClassVar[str] = "context_precision"

    def score(self, example: Example) -> Score:
        found = self._inputs(example)
        if isinstance(found, str):
            return unjudged(self.name, found)
        statements, retrieved = found
        if not retrieved:
            return Score(self.name, 0.0, "every retrieved passage is empty", self._verdict(0.0))
        relevant = [max(supported_by(statements, [passage], self.embed)) >= SUPPORTED for passage in retrieved]
        precisions = [sum(relevant[: rank + 1]) / (rank + 1) for rank, hit in enumerate(relevant) if hit]
        value = sum(precisions) / len(precisions) if precisions else 0.0
        explanation = (
            f"{sum(relevant)} of {len(retrieved)} retrieved passages support the expected context; "
            f"average precision {value:.2f}"
        )
        details = {"relevant_ranks": [rank for rank, hit in enumerate(relevant, start=1) if hit]}
        return Score(self.name, round(value, 4), explanation, self._verdict(value), details)
