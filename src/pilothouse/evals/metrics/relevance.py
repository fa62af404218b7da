"""`answer_relevance`: is the answer about what was asked?

The cosine of the MiniLM embeddings of the question (the example's `input`) and of the answer (its first 256
tokens, what MiniLM reads). The pass threshold is calibrated on HaluEval's general set (real questions with
ChatGPT's answers against answers to other questions; `training/calibrate_relevance.py`), and recorded with
its held-out figures in `relevance_calibration.py`. It detects answers to another question or off-topic
answers; it cannot tell a correct answer from a wrong one on the same topic (that is `groundedness`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics import relevance_calibration as calibration
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.options import fraction


def _default_embed(texts: list[str]) -> FloatArray:
    from pilothouse.guards.embedder import embed

    return embed(texts)


class AnswerRelevance:
    """Options: `threshold` (cosine needed; default: the calibrated one)."""

    name: ClassVar[str] = "answer_relevance"
    family: ClassVar[Family] = "embedding"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, threshold: float | None = None, embed: Callable[[list[str]], FloatArray] | None = None) -> None:
        self.threshold = calibration.THRESHOLD if threshold is None else fraction(threshold, "'threshold'")
        if embed is not None and not callable(embed):
            raise MetricSpecError("'embed' must be a function from texts to unit vectors")
        self.embed = embed or _default_embed
        self.label = f"answer_relevance >= {self.threshold:.2f}"

    def score(self, example: Example) -> Score:
        if not example.input.strip():
            return unjudged(self.name, "no question to judge the answer against")
        if not example.output.strip():
            return unjudged(self.name, "the answer is empty")
        vectors = self.embed([example.input, example.output])
        cosine = float(np.clip(vectors[0] @ vectors[1], 0.0, 1.0))
        ok = cosine >= self.threshold
        explanation = f"similarity to the question {cosine:.2f} (threshold {self.threshold:.2f})"
        return Score(self.name, round(cosine, 4), explanation, ok)
