"""Lexical features of a text for the injection classifier: words, word pairs and character 4-grams.

Features are read from the normalised text (`normalize.normalize`: lower case, homoglyphs folded, invisible
characters dropped), so disguises do not change them. The classifier's vocabulary (chosen at training time)
maps each feature string to a weight; a text's vector is the set of its features in the vocabulary, L2
normalised (each present feature weighs 1/sqrt(count)). The same code builds features at training and at
inference, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from itertools import pairwise

__all__ = ["MAX_FEATURE_CHARS", "feature_strings", "segments"]

MAX_FEATURE_CHARS = 12_000
"""Features are read from the first this many characters (a bound on work; the rules still read all)."""

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\s*\n+\s*|\s*\|\s*")
MAX_SEGMENT_CHARS = 400


def feature_strings(text: str) -> set[str]:
    """The distinct feature strings of a normalised text: words, adjacent word pairs, character 4-grams
    of the space-joined words (which carry spelling variants and word pieces)."""
    tokens = _TOKEN.findall(text[:MAX_FEATURE_CHARS])
    found: set[str] = set(tokens)
    found.update(f"{a} {b}" for a, b in pairwise(tokens))
    joined = f" {' '.join(tokens)} "
    found.update(joined[i : i + 4] for i in range(len(joined) - 3))
    return found


def segments(text: str) -> list[tuple[int, int]]:
    """Sentence-like segments of a text as (start, end) spans: split at sentence ends, line breaks and `|`
    (e-mail exports), long sentences cut to MAX_SEGMENT_CHARS."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.extend(_cut(text, start, match.start()))
        start = match.end()
    spans.extend(_cut(text, start, len(text)))
    return spans


def _cut(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    if start >= end:
        return []
    return [(i, min(i + MAX_SEGMENT_CHARS, end)) for i in range(start, end, MAX_SEGMENT_CHARS)]
