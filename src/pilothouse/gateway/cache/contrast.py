"""The contrast check: may the answer cached for one question answer another that embeds close to it?

Sentence embeddings put "How do I enable X?" and "How do I disable X?" close together, and likewise
questions that differ in a number, a date, a name, a time frame or the order of a comparison. The check
compares the two questions word by word instead of by lists of known contrasts:

1. both are normalised (contrast_normalise: quotes, contractions, tokens such as C++ and v2.3) and their
   request frames rewritten to one form (contrast_frames: greetings, "could you tell me", "how do I" /
   "what is the best way to");
2. every word gets a class (contrast_features): the meaning-bearing closed classes (negation, numbers,
   dates, time frames, units, comparison, quantity words, modals, tense, direction, question word) must
   match exactly, as multisets;
3. every content word of either question must have a counterpart in the other (contrast_align: same lemma,
   joined words or initials, a typo, a derived form, or a synonym by word-vector similarity; never an
   opposite): an unaligned word is a difference the cached answer did not address;
4. aligned words must not change sides of a comparison or direction word, nor swap roles around a verb
   (pronouns included: "do I owe him" / "does he owe me"), a conversion must not run the other way, and a
   verb must not change between the simple past and the progressive (contrast_roles).

It is deliberately strict: a refused paraphrase costs one upstream call; a wrong hit answers the wrong
question. `ContrastChecker.compare(query, cached)` returns a `Verdict` whose `kind` says which rule refused
and whose `reason` names the words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pilothouse.gateway.cache.contrast_align import AlignSettings, align, anchors, order_change
from pilothouse.gateway.cache.contrast_features import Analysis, Item, analyse
from pilothouse.gateway.cache.contrast_roles import aspect_change
from pilothouse.gateway.cache.contrast_vectors import (
    EmbedWords,
    NeedsModel,
    WordSource,
    WordVectors,
    minilm_vocabulary,
    minilm_word_embedder,
)
from pilothouse.gateway.cache.contrast_wordtable import WordTable, load_word_table

__all__ = ["SYNONYM_SIMILARITY", "ContrastChecker", "Verdict", "check", "default_checker"]

SYNONYM_SIMILARITY = 0.8  # least word-vector cosine of two synonyms (tuned on the dev set's tuning part)
DERIVED_SIMILARITY = 0.5  # least cosine of a derived form or abbreviation ("config"/"configuration")

# The meaning-bearing classes, in the order they are compared, and the kind a refusal reports.
_CLASS_KINDS = (
    ("negation", "negation"),
    ("number", "number"),
    ("date", "date"),
    ("time_frame", "time_frame"),
    ("unit", "unit"),
    ("degree", "comparison"),
    ("quantifier", "quantity_word"),
    ("modal", "modal"),
    ("tense", "tense"),
    ("relation", "direction"),
    ("question", "question"),
    ("reflexive", "reflexive"),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a cached answer may be reused; for a refusal, its class and a sentence naming the words."""

    ok: bool
    reason: str | None = None
    kind: str | None = None  # "negation", "number", "opposites", "unaligned", "name", "order", ...


def _words(items: Iterable[Item]) -> str:
    return ", ".join(f"'{m.text}'" for m in items)


def _missing(query: list[Item], cached: list[Item]) -> str:
    if query:
        other = f" ({_words(cached)})" if cached else ""
        return f"{_words(query)} in the query has no counterpart in the cached question{other}"
    return f"{_words(cached)} in the cached question has no counterpart in the query"


def _extra(items: list[Item], counts: Counter[str]) -> list[Item]:
    left = Counter(counts)
    out = []
    for m in items:
        if left[m.key] > 0:
            left[m.key] -= 1
            out.append(m)
    return out


def _class_difference(query: Analysis, cached: Analysis) -> Verdict | None:
    for cls, kind in _CLASS_KINDS:
        q = [m for m in query.marked if m.cls == cls]
        c = [m for m in cached.marked if m.cls == cls]
        qc, cc = Counter(m.key for m in q), Counter(m.key for m in c)
        if qc != cc:
            return Verdict(False, _missing(_extra(q, qc - cc), _extra(c, cc - qc)), kind)
    return None


def _persons_swapped(query: Analysis, cached: Analysis) -> tuple[str, str] | None:
    """("role_swap", reason) when both questions name two persons in opposite order ("do I owe you" / "do you
    owe me"); one person alone is not compared ("how do I" and "how do you" ask the same)."""
    first_q, first_c = list(dict.fromkeys(query.persons)), list(dict.fromkeys(cached.persons))
    if len(first_q) >= 2 and sorted(first_q) == sorted(first_c) and first_q != first_c:
        return "role_swap", "the people in the two questions swap roles (who does what to whom differs)"
    return None


class ContrastChecker:
    """Compares two questions; word vectors (for synonyms) are cached in an LRU of `cache_size` words.

    `embed_words` maps words to unit vectors (default: the bundled MiniLM, loaded on first need, with the
    shipped table of its vocabulary's word vectors looked up first); `vocabulary` is the set of known words,
    which are never taken for typos (default: the MiniLM word-piece vocabulary); `word_table`: precomputed
    vectors to look up before `embed_words` (default: the shipped table when `embed_words` is the default).
    """

    def __init__(
        self,
        embed_words: EmbedWords | None = None,
        *,
        vocabulary: frozenset[str] | None = None,
        synonym_similarity: float = SYNONYM_SIMILARITY,
        derived_similarity: float = DERIVED_SIMILARITY,
        cache_size: int = 8192,
        word_table: WordTable | None = None,
    ) -> None:
        if embed_words is None and word_table is None:
            word_table = load_word_table()
        lookup = word_table.get if word_table is not None else None
        self.vectors = WordVectors(embed_words or minilm_word_embedder(), maxsize=cache_size, table=lookup)
        self.vocabulary = minilm_vocabulary() if vocabulary is None else vocabulary
        self.settings = AlignSettings(synonym_similarity, derived_similarity)

    def compare(self, query: str, cached: str) -> Verdict:
        """Whether the answer cached for `cached` may answer `query`."""
        return self._compare(query, cached, self.vectors)

    def compare_without_model(self, query: str, cached: str) -> Verdict | None:
        """As `compare`, or None when it would have to run the model for a word (neither in the shipped table nor
        seen before): the cheap, non-blocking part a lookup can do on its event loop."""
        try:
            return self._compare(query, cached, self.vectors.without_model())
        except NeedsModel:
            return None

    def _compare(self, query: str, cached: str, vectors: WordSource) -> Verdict:
        q, c = analyse(query), analyse(cached)
        different = _class_difference(q, c)
        if different is not None:
            return different
        alignment = align(q, c, vectors, self.vocabulary, self.settings)
        if alignment.left or alignment.right:
            return self._unaligned(alignment.left, alignment.right, alignment.opposites, alignment.degrees)
        changed = (
            order_change(q, c, anchors(q, c, alignment))
            or _persons_swapped(q, c)
            or aspect_change(q, c, [(x, y) for x, y, how in alignment.pairs if how == "same"])
        )
        if changed is not None:
            return Verdict(False, changed[1], changed[0])
        return Verdict(True)

    @staticmethod
    def _unaligned(
        left: list[Item], right: list[Item], opposites: list[tuple[Item, Item]], degrees: list[tuple[Item, Item]]
    ) -> Verdict:
        for x, y in opposites:
            if x in left and y in right:
                return Verdict(
                    False, f"'{x.text}' in the query is the opposite of '{y.text}' in the cached question", "opposites"
                )
        for x, y in degrees:
            if x in left and y in right:
                return Verdict(
                    False,
                    f"'{x.text}' in the query compares differently from '{y.text}' in the cached question",
                    "comparison",
                )
        kind = "name" if any(m.name for m in [*left, *right]) else "unaligned"
        return Verdict(False, _missing(left, right), kind)


@lru_cache(maxsize=1)
def default_checker() -> ContrastChecker:
    """The process-wide checker with the bundled MiniLM word vectors."""
    return ContrastChecker()


def check(query: str, cached: str) -> Verdict:
    """Whether the answer cached for `cached` may answer `query` (with the process-wide checker)."""
    return default_checker().compare(query, cached)
