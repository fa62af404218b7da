"""The features of one claim against the retrieved context, for the groundedness classifier.

Lexical evidence (which of the claim's content words, word pairs, numbers and names the context contains, in
all of it and in its best passage) says whether the claim could have been read off the context; the MiniLM
similarity of the claim to its closest context sentence says whether it is about the same thing in other words.
Neither alone is enough: a claim that swaps one number, name or term of a passage keeps a high similarity and
a high word overlap, and only the number, name and novel-word features see it (`novel_in_copy`: a claim that
copies a passage but for a word or two is suspicious for exactly those words).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.evals.metrics.claims import content_words, names, numbers, tokens
from pilothouse.guards.sentences import sentence_spans

FEATURES = (
    "recall_all",
    "recall_best",
    "bigram_recall",
    "unsupported_numbers",
    "has_numbers",
    "unsupported_names",
    "missing_words",
    "novel_in_copy",
    "cosine_best",
    "cosine_chunk",
    "length",
)

MISSING_CAP = 4
"""Content words of a claim absent from the context, counted up to this (one invented term is the signal)."""

Embed = Callable[[list[str]], FloatArray]
"""Texts to unit-length vectors (the guards' cached MiniLM embedder in production)."""


def _sentences(context: list[str]) -> list[str]:
    return [s.text for chunk in context for s in sentence_spans(chunk)]


def _passages(context: list[str]) -> list[str]:
    """Context sentences, and each pair of consecutive sentences of one chunk (a claim may join two)."""
    out: list[str] = []
    for chunk in context:
        sentences = [s.text for s in sentence_spans(chunk)]
        out.extend(sentences)
        out.extend(f"{a} {b}" for a, b in itertools.pairwise(sentences))
    return out


def _bigrams(words: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(words))


class ContextIndex:
    """The lexical and embedding view of one example's context, built once and shared by its claims."""

    def __init__(self, context: list[str], embed: Embed) -> None:
        self.passages = _passages(context) or [""]
        self.passage_words = [set(content_words(p)) for p in self.passages]
        joined = "\n".join(context)
        self.words = set(content_words(joined))
        self.bigrams = set().union(*(_bigrams(content_words(c)) for c in context)) if context else set()
        self.numbers = numbers(joined)
        self.tokens = set(tokens(joined))
        sentences = _sentences(context)
        # Sentences, then whole chunks (MiniLM reads the first 256 tokens of a chunk: its topic).
        vectors = embed(sentences + context) if context else np.zeros((0, 384), dtype=np.float32)
        self.sentence_vectors = vectors[: len(sentences)]
        self.chunk_vectors = vectors[len(sentences) :]
        self._embed = embed

    def features(self, claims: list[str]) -> FloatArray:
        """One row of FEATURES per claim."""
        rows = np.zeros((len(claims), len(FEATURES)), dtype=np.float32)
        if not claims:
            return rows
        vectors = self._embed(claims)
        cosines = (
            vectors @ self.sentence_vectors.T if len(self.sentence_vectors) else np.zeros((len(claims), 1))
        ).astype(np.float32)
        chunk_cosines = (
            vectors @ self.chunk_vectors.T if len(self.chunk_vectors) else np.zeros((len(claims), 1))
        ).astype(np.float32)
        for i, claim in enumerate(claims):
            words = content_words(claim)
            unique = set(words)
            if unique:
                recall_all = len(unique & self.words) / len(unique)
                recall_best = max(len(unique & p) / len(unique) for p in self.passage_words)
            else:
                recall_all = recall_best = 1.0
            pairs = _bigrams(words)
            bigram_recall = len(pairs & self.bigrams) / len(pairs) if pairs else recall_all
            claim_numbers = numbers(claim)
            unsupported_numbers = len(claim_numbers - self.numbers) / len(claim_numbers) if claim_numbers else 0.0
            claim_names = names(claim)
            unsupported_names = len(claim_names - self.tokens) / len(claim_names) if claim_names else 0.0
            rows[i] = (
                recall_all,
                recall_best,
                bigram_recall,
                unsupported_numbers,
                1.0 if claim_numbers else 0.0,
                unsupported_names,
                min(len(unique - self.words), MISSING_CAP) / MISSING_CAP,
                recall_best * min(len(unique - self.words), 2) / 2,
                float(cosines[i].max()) if cosines.shape[1] else 0.0,
                float(chunk_cosines[i].max()) if chunk_cosines.shape[1] else 0.0,
                math.log1p(len(unique)) / 3.0,
            )
        return rows
