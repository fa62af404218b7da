"""`groundedness` (faithfulness): are the answer's claims supported by the retrieved context?

The answer is cut into claims (`claims.py`); each claim gets the probability that the context supports it from
a small logistic model over lexical and embedding features (`grounding_features.py`), trained by
`training/train_groundedness.py` (weights in `groundedness_weights.py`, with the figures it was measured at).
The score is the support of the weakest claim: an answer is as grounded as its least supported statement, so
one invented number in an otherwise faithful answer makes it ungrounded (value under `threshold`, 0.5 by
default, the cut the monitors' hallucination rate uses). An answer without retrieved context, or without any
claim, is not judged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics import groundedness_weights as trained
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.claims import claims
from pilothouse.evals.metrics.grounding_features import FEATURES, ContextIndex
from pilothouse.evals.metrics.options import excerpt, fraction

MAX_CLAIMS = 40
"""Claims judged per answer (the first ones); a longer answer says so in its explanation."""

_WEIGHTS = np.asarray(trained.WEIGHTS, dtype=np.float32)
if tuple(trained.FEATURES) != FEATURES or len(_WEIGHTS) != len(FEATURES):
    raise RuntimeError("groundedness_weights.py was trained on other features: run training/train_groundedness.py")


def support_probabilities(features: FloatArray) -> FloatArray:
    """P(the context supports the claim) per row of claim features."""
    logits = features @ _WEIGHTS + np.float32(trained.BIAS)
    result: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)
    return result


def _default_embed(texts: list[str]) -> FloatArray:
    from pilothouse.guards.embedder import embed

    return embed(texts)


class Groundedness:
    """Options: `threshold` (claim support needed, default 0.5)."""

    name: ClassVar[str] = "groundedness"
    family: ClassVar[Family] = "rag"
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = trained.VERSION

    def __init__(self, threshold: float = 0.5, embed: Callable[[list[str]], FloatArray] | None = None) -> None:
        self.threshold = fraction(threshold, "'threshold'")
        if embed is not None and not callable(embed):
            raise MetricSpecError("'embed' must be a function from texts to unit vectors")
        self.embed = embed or _default_embed
        self.label = f"groundedness >= {self.threshold}"

    def score(self, example: Example) -> Score:
        context = [c for c in example.context if c.strip()]
        if not context:
            return unjudged(self.name, "no retrieved context to check the answer against")
        found = claims(example.output)
        if not found:
            return unjudged(self.name, "the answer states nothing to check (no claims)")
        judged = found[:MAX_CLAIMS]
        support = support_probabilities(ContextIndex(context, self.embed).features(judged))
        weakest = int(np.argmin(support))
        value = float(support[weakest])
        supported = int((support >= self.threshold).sum())
        explanation = f"{supported} of {len(judged)} claims supported by the context"
        if supported < len(judged):
            explanation += f"; least supported: {excerpt(judged[weakest], 100)} ({value:.2f})"
        if len(found) > len(judged):
            explanation += f"; only the first {MAX_CLAIMS} of {len(found)} claims were judged"
        details: dict[str, Any] = {
            "model": trained.VERSION,
            "claims": [{"claim": c, "support": round(float(p), 4)} for c, p in zip(judged, support, strict=True)],
            "supported_share": round(supported / len(judged), 4),
        }
        return Score(self.name, round(value, 4), explanation, value >= self.threshold, details)
