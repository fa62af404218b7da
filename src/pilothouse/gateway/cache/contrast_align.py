"""Content-word alignment and order checks for the contrast check.

Every content word of either question needs a counterpart in the other: the same lemma (names and
identifiers: the same word, case folded), two words written as one ("log in"/"login"), initials of a phrase
("SSO"/"single sign on"), a typo of a word the other has (only where one of the two is not a known word),
a derived form ("summary"/"summarise"), or a synonym by word-vector similarity. Opposites and comparative
forms never count as counterparts. Whatever is left over is a difference the cached answer did not address.

Then the order: aligned words that change sides of a comparison or direction word ("X than Y" / "Y than X",
"from X to Y" / "from Y to X"), a conversion the other way, or arguments that swap roles around a verb
(contrast_roles: "does Alice owe Bob" / "does Bob owe Alice", "do I owe him" / "does he owe me").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pilothouse.gateway.cache.contrast_antonyms import opposite
from pilothouse.gateway.cache.contrast_features import Analysis, Item
from pilothouse.gateway.cache.contrast_morphology import degree_change, derived, lemma, typo
from pilothouse.gateway.cache.contrast_roles import argument_swap, unit_direction
from pilothouse.gateway.cache.contrast_synonyms import synonyms
from pilothouse.gateway.cache.contrast_vectors import WordSource
from pilothouse.gateway.cache.contrast_words import CLASSIFIERS

_ORDERED_CLASSES = frozenset({"number", "unit", "date", "time_frame"})
MAX_EMBEDDED_WORDS = 6  # more open words than this: the questions differ too much to be worth embedding


@dataclass(slots=True)
class Alignment:
    pairs: list[tuple[Item, Item, str]] = field(default_factory=list)  # (query word, cached word, how)
    left: list[Item] = field(default_factory=list)  # query words without a counterpart
    right: list[Item] = field(default_factory=list)  # cached words without a counterpart
    opposites: list[tuple[Item, Item]] = field(default_factory=list)  # unaligned pairs that are opposites
    degrees: list[tuple[Item, Item]] = field(default_factory=list)  # "cheap"/"cheaper"


@dataclass(frozen=True, slots=True)
class AlignSettings:
    synonym_similarity: float  # least word-vector cosine of two synonyms
    derived_similarity: float  # least cosine of a derived form or abbreviation ("config"/"configuration")


def _same(a: Item, b: Item) -> bool:
    la, lb = a.text.lower(), b.text.lower()
    if la == lb or lemma(la) == lemma(lb):
        return True
    single = _single_l(lemma(la))
    if len(single) >= 5 and single == _single_l(lemma(lb)):
        return True  # "cancelled" / "cancel", "modelling" / "model": a British double l (not "filled" / "filed")
    return not a.name and not b.name and a.key == b.key


def _single_l(word: str) -> str:
    return word[:-1] if word.endswith("ll") else word


def _joined(a: Item, pair: tuple[Item, Item]) -> bool:
    x, y = pair
    if y.pos != x.pos + 1 or a.name:
        return False
    glued = x.text.lower() + y.text.lower()
    return glued == a.text.lower() or lemma(glued) == a.key


def _initials(a: Item, rest: Sequence[Item], k: int, words: Sequence[str]) -> list[Item]:
    """The words starting at rest[k] whose initials `a` is ("SSO": "single sign on", "PTO": "paid time off"),
    counting the function words between them or not; [] when it is not."""
    letters = a.text.lower()
    if not (2 <= len(letters) <= 6 and letters.isalpha()):
        return []
    start = rest[k].pos
    window = words[start : start + len(letters)]
    if len(window) == len(letters) and "".join(w[:1] for w in window) == letters:
        covered = [y for y in rest if start <= y.pos < start + len(letters)]
        if len(covered) >= 2:
            return covered
    run = list(rest[k : k + len(letters)])
    if len(run) == len(letters) >= 2 and "".join(y.text[0].lower() for y in run) == letters:
        return run
    return []


def _clipped(a: Item, run: Sequence[Item], vocabulary: frozenset[str]) -> bool:
    """`a` is clipped from two consecutive words ("regex" = "regular expression", "devops")."""
    word = a.text.lower()
    if len(run) != 2 or run[1].pos != run[0].pos + 1 or not word.isalpha() or len(word) < 4 or word in vocabulary:
        return False
    first, second = run[0].text.lower(), run[1].text.lower()
    return any(
        first.startswith(word[:k]) and second.startswith(word[k:]) and len(word) - k >= 2
        for k in range(2, len(word) - 1)
    )


def _structural(
    a: list[Item], b: list[Item], out: Alignment, query_first: bool, vocabulary: frozenset[str], b_words: Sequence[str]
) -> tuple[list[Item], list[Item]]:
    """Compounds, clipped compounds and initials: one word on one side, two or more on the other."""
    rest_a, rest_b = list(a), list(b)
    for x in list(rest_a):
        found: list[Item] = []
        for k in range(len(rest_b)):
            pair = rest_b[k : k + 2]
            if len(pair) == 2 and (_joined(x, (pair[0], pair[1])) or _clipped(x, pair, vocabulary)):
                found = pair
                break
            found = _initials(x, rest_b, k, b_words)
            if found:
                break
        if found:
            rest_a.remove(x)
            for y in found:
                rest_b.remove(y)
                out.pairs.append((x, y, "joined") if query_first else (y, x, "joined"))
    return rest_a, rest_b


def align(
    query: Analysis,
    cached: Analysis,
    vectors: WordSource | None,
    vocabulary: frozenset[str],
    settings: AlignSettings,
) -> Alignment:
    """Pair the content words of the query with those of the cached question."""
    out = Alignment()
    rest_b = list(cached.content)
    rest_a: list[Item] = []
    for x in query.content:
        y = next((y for y in rest_b if _same(x, y)), None)
        if y is None:
            rest_a.append(x)
        else:
            rest_b.remove(y)
            out.pairs.append((x, y, "same"))
    # a word repeated on one side ("brown rice ... white rice") needs no second counterpart
    rest_a = [x for x in rest_a if not any(_same(x, y) for y in cached.content)]
    rest_b = [y for y in rest_b if not any(_same(x, y) for x in query.content)]
    if rest_a and rest_b:
        rest_a, rest_b = _structural(rest_a, rest_b, out, True, vocabulary, cached.words)
        rest_b, rest_a = _structural(rest_b, rest_a, out, False, vocabulary, query.words)
    if rest_a and rest_b:
        rest_a, rest_b = _loose(rest_a, rest_b, out, vectors, vocabulary, settings)
    aligned_a = {x.pos for x, _, _ in out.pairs}
    aligned_b = {y.pos for _, y, _ in out.pairs}
    out.left = [x for x in rest_a if not _classifier(x, aligned_a)]
    out.right = [y for y in rest_b if not _classifier(y, aligned_b)]
    return out


def _classifier(word: Item, aligned: set[int]) -> bool:
    return word.text.lower() in CLASSIFIERS and word.pos - 1 in aligned


def _loose(
    rest_a: list[Item],
    rest_b: list[Item],
    out: Alignment,
    vectors: WordSource | None,
    vocabulary: frozenset[str],
    settings: AlignSettings,
) -> tuple[list[Item], list[Item]]:
    """Typos, synonyms, derived forms and word-vector synonyms, best first; opposites and comparatives are
    never counterparts. Word vectors are looked up only for the pairs the other rules leave open."""
    scored: list[tuple[float, Item, Item, str]] = []
    open_pairs: list[tuple[Item, Item]] = []
    for x in rest_a:
        for y in rest_b:
            if x.name or y.name:
                continue
            lx, ly = x.text.lower(), y.text.lower()
            if opposite(lx, ly):
                out.opposites.append((x, y))
            elif degree_change(lx, ly) or degree_change(x.key, y.key):
                out.degrees.append((x, y))
            elif typo(lx, ly) and not (lx in vocabulary and ly in vocabulary):
                scored.append((3.0, x, y, "typo"))
            elif synonyms(x.key, y.key):
                scored.append((2.5, x, y, "synonym"))
            else:
                open_pairs.append((x, y))
    resolved = {id(w) for _, x, y, _ in scored for w in (x, y)}
    open_pairs = [(x, y) for x, y in open_pairs if id(x) not in resolved and id(y) not in resolved]
    reachable = resolved | {id(w) for pair in open_pairs for w in pair}
    decided = any(id(w) not in reachable for w in [*rest_a, *rest_b])  # a word with no possible counterpart
    words = {w.text.lower() for pair in open_pairs for w in pair}
    if vectors is not None and open_pairs and not decided and len(words) <= MAX_EMBEDDED_WORDS:
        found = vectors.vectors([w.text.lower() for pair in open_pairs for w in pair])
        for x, y in open_pairs:
            lx, ly = x.text.lower(), y.text.lower()
            sim = float(found[lx] @ found[ly])
            if (derived(lx, ly) or derived(x.key, y.key)) and sim >= settings.derived_similarity:
                scored.append((2.0, x, y, "derived"))
            elif sim >= settings.synonym_similarity:
                scored.append((sim, x, y, f"similar words ({sim:.2f})"))
    scored.sort(key=lambda s: -s[0])
    used_a: set[int] = set()
    used_b: set[int] = set()
    for _, x, y, how in scored:
        if id(x) in used_a or id(y) in used_b:
            continue
        used_a.add(id(x))
        used_b.add(id(y))
        out.pairs.append((x, y, how))
    return [x for x in rest_a if id(x) not in used_a], [y for y in rest_b if id(y) not in used_b]


def anchors(query: Analysis, cached: Analysis, alignment: Alignment) -> list[tuple[Item, Item]]:
    """Aligned content words, and numbers, units, dates and time frames matched occurrence by occurrence."""
    out = [(x, y) for x, y, _ in alignment.pairs]
    for cls in _ORDERED_CLASSES:
        left = [m for m in query.marked if m.cls == cls]
        right = [m for m in cached.marked if m.cls == cls]
        used: set[int] = set()
        for x in left:
            y = next((y for y in right if y.key == x.key and id(y) not in used), None)
            if y is not None:
                used.add(id(y))
                out.append((x, y))
    return out


def _between(pivots: tuple[tuple[int, str], ...], lo: int, hi: int) -> set[str]:
    return {word for pos, word in pivots if lo < pos < hi}


def order_change(query: Analysis, cached: Analysis, pairs: list[tuple[Item, Item]]) -> tuple[str, str] | None:
    """(kind, reason) when an aligned word changes direction ("from X" / "to X"), aligned words change sides of
    a comparison ("X than Y" / "Y than X"), or swap roles around a verb ("does Alice owe Bob")."""
    for x, y in pairs:
        if x.prep and y.prep and x.prep != y.prep:
            return "direction", f"'{x.prep} {x.text}' in the query but '{y.prep} {y.text}' in the cached question"
    pairs = sorted(pairs, key=lambda p: p[0].pos)
    for i, (x1, y1) in enumerate(pairs):
        for x2, y2 in pairs[i + 1 :]:
            if x1.pos == x2.pos or y1.pos <= y2.pos:
                continue
            common = _between(query.pivots, x1.pos, x2.pos) & _between(cached.pivots, y2.pos, y1.pos)
            if common:
                pivot = sorted(common)[0]
                return "order", f"'{x1.text}' and '{x2.text}' change sides of '{pivot}' between the two questions"
    return unit_direction(query, cached) or argument_swap(
        query, cached, [(x, y) for x, y in pairs if x.cls == "content"]
    )
