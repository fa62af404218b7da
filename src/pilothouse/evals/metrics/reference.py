"""Comparing an answer with the reference answer (`expected`): `bleu` (n-gram overlap) and `semantic_similarity`
(meaning, by embeddings).

- `bleu`: sentence BLEU-4 against every expected text at once (multi-reference: clipped n-gram counts take the
  most any reference allows, the brevity penalty the closest reference length), on lower-cased word and
  punctuation tokens, with add-epsilon smoothing (0.1) for a missing n-gram order so a short answer is not scored
  zero for lacking one 4-gram (Chen and Cherry 2014, method 1).
- `semantic_similarity`: the largest cosine of the MiniLM embeddings of the answer and of each expected text.
  It rewards the same meaning in other words, which BLEU cannot; it does not tell a right number from a wrong one
  in an otherwise identical sentence.
Both report their value; `passed` only when a `threshold` is given (no default cut is claimed to be calibrated).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.options import fraction

__all__ = ["Bleu", "SemanticSimilarity", "sentence_bleu"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
MAX_N = 4
EPSILON = 0.1


def _references(example: Example) -> list[str] | None:
    value = example.expected
    items = value if isinstance(value, list) else [value]
    texts = [str(v) for v in items if v is not None and str(v).strip()]
    return texts or None


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    """BLEU-4 of one hypothesis against references (see the module docstring)."""
    hyp = _TOKEN.findall(hypothesis.lower())
    refs = [_TOKEN.findall(r.lower()) for r in references]
    if not hyp or not any(refs):
        return 0.0
    logs = []
    for n in range(1, MAX_N + 1):
        counts = _ngrams(hyp, n)
        total = sum(counts.values())
        if total == 0:
            logs.append(math.log(EPSILON / 1))
            continue
        allowed: Counter[tuple[str, ...]] = Counter()
        for ref in refs:
            allowed |= _ngrams(ref, n)
        matched = sum(min(c, allowed[g]) for g, c in counts.items())
        logs.append(math.log((matched or EPSILON) / total))
    closest = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
    penalty = 1.0 if len(hyp) > closest else math.exp(1 - closest / len(hyp))
    return penalty * math.exp(sum(logs) / MAX_N)


class Bleu:
    """Options: `threshold` (optional, 0..1)."""

    name: ClassVar[str] = "bleu"
    family: ClassVar[Family] = "deterministic"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = None if threshold is None else fraction(threshold, "'threshold'")
        self.label = "bleu" + ("" if threshold is None else f" >= {threshold}")

    def score(self, example: Example) -> Score:
        references = _references(example)
        if references is None:
            return unjudged(self.name, "no expected answer to compare with")
        value = round(sentence_bleu(example.output, references), 4)
        passed = None if self.threshold is None else value >= self.threshold
        return Score(self.name, value, f"BLEU-4 {value:.3f} against {len(references)} reference(s)", passed)


def _default_embed(texts: list[str]) -> FloatArray:
    from pilothouse.guards.embedder import embed

    return embed(texts)


class SemanticSimilarity:
    """Options: `threshold` (optional cosine, 0..1)."""

    name: ClassVar[str] = "semantic_similarity"
    family: ClassVar[Family] = "embedding"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, threshold: float | None = None, embed: Callable[[list[str]], FloatArray] | None = None) -> None:
        self.threshold = None if threshold is None else fraction(threshold, "'threshold'")
        if embed is not None and not callable(embed):
            raise MetricSpecError("'embed' must be a function from texts to unit vectors")
        self.embed = embed or _default_embed
        self.label = "semantic_similarity" + ("" if threshold is None else f" >= {threshold}")

    def score(self, example: Example) -> Score:
        references = _references(example)
        if references is None:
            return unjudged(self.name, "no expected answer to compare with")
        if not example.output.strip():
            return unjudged(self.name, "the answer is empty")
        vectors = self.embed([example.output, *references])
        cosine = float(np.clip(np.max(vectors[1:] @ vectors[0]), 0.0, 1.0))
        passed = None if self.threshold is None else cosine >= self.threshold
        return Score(self.name, round(cosine, 4), f"similarity to the expected answer {cosine:.2f}", passed)
