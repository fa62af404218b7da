"""Misspelt closed-class words put right before the contrast check reads a question.

The closed classes (negations, quantifiers, modals, question words, prepositions, time frames, units, months,
number words) must match exactly between two questions, so a typo in one of them ("shoud", "wich", "duriing",
"anoter", "yaer") would read as a missing word and refuse a paraphrase. A token that is not a known English
word (the MiniLM vocabulary) and is one slip (Damerau-Levenshtein 1) from exactly one closed-class word of
four letters or more is taken for that word; for the closed-class nouns (months, days, time frames, units),
which an unknown content word may also be one letter from ("lifter" / "liter"), only two swapped letters.
Names and identifiers are never corrected; content words are left to the typo rule of the alignment
(contrast_morphology.typo), which pairs them with the other question.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache

from pilothouse.gateway.cache import contrast_words as cw
from pilothouse.gateway.cache.contrast_morphology import damerau
from pilothouse.gateway.cache.contrast_normalise import Token
from pilothouse.gateway.cache.contrast_vectors import minilm_vocabulary

MIN_LENGTH = 4


def _closed_words() -> Iterable[str]:
    """Words a slip of which is corrected whatever the slip: function words, the closed classes, numbers."""
    yield from cw.CLOSED_CLASS
    yield from cw.UNITS_ONES
    yield from cw.TENS


def _nouns() -> Iterable[str]:
    """Closed-class nouns (months, days, time frames, units): an unknown word may be a content word one letter
    away from one ("lifter" / "liter"), so only two swapped letters count ("yaer", "mondya")."""
    for table in (cw.MONTHS, cw.WEEKDAYS, cw.TIME_FRAMES, cw.ADVERB_FRAMES, cw.UNITS, cw.ORDINALS):
        yield from table
    yield from cw.DAY_WORDS


def _swapped(a: str, b: str) -> bool:
    diff = [i for i in range(len(a)) if a[i] != b[i]] if len(a) == len(b) else []
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def _deletes(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=1)
def _index() -> dict[str, frozenset[str]]:
    """Each closed-class word under itself and every one-letter deletion of it (symmetric-delete lookup)."""
    index: dict[str, set[str]] = {}
    for word in _closed_words():
        if len(word) >= MIN_LENGTH and word.isalpha():
            for key in _deletes(word):
                index.setdefault(key, set()).add(word)
    return {k: frozenset(v) for k, v in index.items()}


@lru_cache(maxsize=16384)
def correction(word: str) -> str | None:
    """The closed-class word `word` (lower case) is a slip of, or None."""
    if len(word) < MIN_LENGTH or not word.isalpha() or word in cw.CLOSED_CLASS or word in minilm_vocabulary():
        return None
    index = _index()
    found = {c for key in _deletes(word) for c in index.get(key, ()) if damerau(word, c, 1) <= 1}
    found |= {c for c in _noun_index().get("".join(sorted(word)), ()) if _swapped(word, c)}
    return next(iter(found)) if len(found) == 1 else None


@lru_cache(maxsize=1)
def _noun_index() -> dict[str, frozenset[str]]:
    """Closed-class nouns by their sorted letters (a transposition keeps them)."""
    index: dict[str, set[str]] = {}
    for word in _nouns():
        if len(word) >= MIN_LENGTH and word.isalpha() and word not in cw.CLOSED_CLASS:
            index.setdefault("".join(sorted(word)), set()).add(word)
    return {k: frozenset(v) for k, v in index.items()}


def correct(tokens: list[Token]) -> list[Token]:
    """`tokens` with misspelt closed-class words replaced (names and quoted words untouched)."""
    out = []
    for t in tokens:
        fixed = None if t.name or t.quoted else correction(t.low)
        out.append(t if fixed is None else replace(t, text=fixed, low=fixed))
    return out
