# Frozen copy of the contrast check before issue 11 (commit a41caae), kept only as the side-by-side
# baseline in benchmarks; do not edit.
"""Contrast checks: a semantic hit is refused when the two questions differ in a way embeddings blur.

Sentence embeddings put "How do I enable X?" and "How do I disable X?" close together (cosine ~0.93 with
MiniLM), and likewise questions that differ only in a number, a date, a name or a unit. Each check extracts
one kind of feature from both texts and refuses when they differ:

- negation: the count of negating words (not, no, never, without, n't, ...);
- opposites: both texts use an axis of opposites (enable/disable, add/remove, ascending/descending, ...)
  with different poles, or one text has a word and the other its negated form (install/uninstall,
  encrypt/decrypt, include/exclude);
- numbers: digits and number words ("three" = "3"), ordinals, in order;
- dates and times: months, weekdays, today/tomorrow/..., "next week", am/pm, in order;
- units: km/miles, Celsius/Fahrenheit, USD/EUR, %, GB/TB, seconds/minutes, ..., in order;
- names: capitalised words not at a sentence start, acronyms, CamelCase, words with digits or dots and
  quoted phrases must appear in the other text too, in the same order (case does not matter). A
  capitalised first word that is not a common question word is a weaker hint: refused only if both texts
  have one the other lacks.

They are deliberately strict (a refused paraphrase costs one upstream call; a wrong hit answers the wrong
question). Word lists are in contrast_lexicon.py.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from . import contrast_lexicon_v1 as lx

_TOKEN = re.compile(
    r"\d+(?:[.,:/]\d+)*"  # numbers, 1,000 / 3.5 / 9:30 / 1/5/2024
    r"|[A-Za-z][A-Za-z0-9]*(?:['\u2019][A-Za-z]+)*(?:[.\-+#][A-Za-z0-9+#]+)*[+#]*"  # words, Node.js, Wi-Fi, C++
    r"|[$€£¥%°]"
)
_QUOTED = re.compile(r"[\"“”']([^\"“”']{2,80})[\"“”']")
_SENTENCE_END = ".!?:;\n"
_APOSTROPHE = "\u2019"
_OPENERS = " \t\"'([*-\u201c\u201d\u2018\u2019"
_PHRASAL = lx.words(
    "turn turns turned turning switch switched switching power shut log logged logging sign signed signing zoom "
    "opt check scroll move round speed slow plug cool"
)
_PARTICLES = frozenset({"on", "off", "in", "out", "up", "down"})
_ORDINAL_SUFFIX = frozenset({"st", "nd", "rd", "th"})
_LEXICON_WORDS = frozenset(
    {w for axis in lx.OPPOSITES for pole in axis for w in pole}
    | lx.NEGATIONS
    | set(lx.UNITS_ONES)
    | set(lx.TENS)
    | set(lx.SCALES)
    | set(lx.ORDINALS)
    | set(lx.MONTHS)
    | set(lx.WEEKDAYS)
    | lx.DAY_WORDS
    | set(lx.UNITS)
)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str | None = None  # which check refused, and on what


@dataclass(frozen=True, slots=True)
class _Token:
    text: str  # as written
    word: str  # lower case, possessive 's and apostrophes removed
    start: bool  # first word of a sentence
    number: bool


@dataclass(frozen=True, slots=True)
class Features:
    words: frozenset[str]  # words, their hyphen parts, and two-word phrases
    negations: int
    numbers: tuple[str, ...]
    dates: tuple[str, ...]
    units: tuple[str, ...]
    strong: tuple[str, ...]  # names (lower case), in order
    weak: tuple[str, ...]  # capitalised first words that may be names
    ordered: tuple[str, ...]  # both, in the order they appear
    quoted: tuple[str, ...]
    vocabulary: frozenset[str]  # every token in lower case, for "does the other text mention it"
    lower: str


def _tokens(text: str) -> list[_Token]:
    found = []
    for m in _TOKEN.finditer(text):
        raw = m.group(0)
        i = m.start() - 1
        while i >= 0 and text[i] in _OPENERS:
            i -= 1
        start = i < 0 or text[i] in _SENTENCE_END
        word = raw.lower().replace(_APOSTROPHE, "'")
        if word.endswith("'s"):
            word = word[:-2]
        word = word.replace("'", "")
        found.append(_Token(raw, word, start, raw[0].isdigit()))
    return found


def _number_text(raw: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        raw = raw.replace(",", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        try:
            return format(Decimal(raw).normalize(), "f")
        except InvalidOperation:
            return raw
    return raw


def _numbers(tokens: list[_Token]) -> tuple[str, ...]:
    out: list[str] = []
    total = current = 0.0
    in_words = False

    def flush() -> None:
        nonlocal total, current, in_words
        if in_words:
            value = total + current
            out.append(format(Decimal(str(value)).normalize(), "f"))
        total = current = 0.0
        in_words = False

    for i, tok in enumerate(tokens):
        w = tok.word
        if tok.number:
            flush()
            nxt = tokens[i + 1].word if i + 1 < len(tokens) else ""
            out.append(_number_text(tok.text) + ("th" if nxt in _ORDINAL_SUFFIX else ""))
            continue
        parts = w.split("-") if "-" in w else [w]
        for part in parts:
            if part in lx.UNITS_ONES:
                current += lx.UNITS_ONES[part]
                in_words = True
            elif part in lx.TENS:
                current += lx.TENS[part]
                in_words = True
            elif part in lx.SCALES and in_words:
                scale = lx.SCALES[part]
                if scale == 100:
                    current = (current or 1) * 100
                else:
                    total += (current or 1) * scale
                    current = 0.0
            elif part in lx.SCALES:
                current, in_words = float(lx.SCALES[part]), True
            elif part == "and" and in_words:
                continue
            elif part in lx.ORDINALS:
                compound = in_words and total == 0 and current in lx.TENS.values()  # twenty-first
                base = current if compound else 0.0
                if not compound:
                    flush()
                total = current = 0.0
                in_words = False
                out.append(format(Decimal(str(base + lx.ORDINALS[part])).normalize(), "f") + "th")
            else:
                flush()
    flush()
    return tuple(out)


def _dates(tokens: list[_Token]) -> tuple[str, ...]:
    out: list[str] = []
    for i, tok in enumerate(tokens):
        w = tok.word
        prev = tokens[i - 1] if i else None
        if w in lx.MONTHS and (w != "may" or (tok.text[0].isupper() and not tok.start)):
            out.append(lx.MONTHS[w])
        elif w in lx.WEEKDAYS:
            out.append(lx.WEEKDAYS[w])
        elif w in ("am", "pm", "a.m", "p.m"):
            if prev is not None and prev.number:
                out.append(w.replace(".", ""))
        elif w in lx.DAY_WORDS:
            out.append(w)
        elif w in lx.RELATIVE and i + 1 < len(tokens):
            nxt = tokens[i + 1].word
            if nxt in lx.PERIODS or nxt in lx.WEEKDAYS or nxt in lx.MONTHS:
                out.append(f"{w} {nxt}")
    return tuple(out)


def _units(tokens: list[_Token]) -> tuple[str, ...]:
    out: list[str] = []
    for i, tok in enumerate(tokens):
        w = tok.word
        prev_number = i > 0 and tokens[i - 1].number
        if w == "°" and i + 1 < len(tokens) and tokens[i + 1].word in ("c", "f"):
            out.append("degc" if tokens[i + 1].word == "c" else "degf")
        elif w in lx.UNITS:
            out.append(lx.UNITS[w])
        elif w in lx.AFTER_NUMBER and prev_number and not (i >= 2 and tokens[i - 2].text == "°"):
            out.append(lx.AFTER_NUMBER[w])
    return tuple(out)


def _is_name(tok: _Token) -> bool:
    raw = tok.text
    if tok.number or not raw[0].isalpha() or raw.replace(_APOSTROPHE, "'") in ("I", "I'm", "I've", "I'd", "I'll", "OK"):
        return False
    letters = raw.replace("-", "")
    inner_caps = (any(c.isupper() for c in letters[1:]) and not raw.isupper()) or (raw.isupper() and len(raw) >= 2)
    technical = any(c.isdigit() for c in raw) or any(c in raw for c in ".+#")
    return inner_caps or technical or (raw[0].isupper() and not tok.start)


def features(text: str) -> Features:
    tokens = _tokens(text)
    words = [t.word for t in tokens]
    word_set: set[str] = set(words)
    for w in words:
        if "-" in w:
            word_set.update(w.split("-"))
    word_set.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    for i, w in enumerate(words):  # "turn notifications off"
        if w in _PHRASAL:
            for particle in words[i + 2 : i + 4]:
                if particle in _PARTICLES:
                    word_set.add(f"{w} {particle}")
                    break
    negations = sum(1 for t in tokens if t.word in lx.NEGATIONS or "n't" in t.text.lower().replace(_APOSTROPHE, "'"))
    strong, weak, ordered = [], [], []
    for tok in tokens:
        if _is_name(tok) and tok.word not in lx.MONTHS and tok.word not in lx.WEEKDAYS:
            strong.append(tok.word)
            ordered.append(tok.word)
        elif (
            tok.start
            and tok.text[0].isupper()
            and tok.word not in lx.STARTERS
            and tok.word not in _LEXICON_WORDS
            and not tok.number
        ):
            weak.append(tok.word)
            ordered.append(tok.word)
    quoted = tuple(q.strip().lower() for q in _QUOTED.findall(text) if q.strip())
    return Features(
        words=frozenset(word_set),
        negations=negations,
        numbers=_numbers(tokens),
        dates=_dates(tokens),
        units=_units(tokens),
        strong=tuple(strong),
        weak=tuple(weak),
        ordered=tuple(ordered),
        quoted=quoted,
        vocabulary=frozenset(word_set),
        lower=text.lower(),
    )


def _opposite(a: Features, b: Features) -> str | None:
    for plus, minus in lx.OPPOSITES:
        a_plus, a_minus = not plus.isdisjoint(a.words), not minus.isdisjoint(a.words)
        b_plus, b_minus = not plus.isdisjoint(b.words), not minus.isdisjoint(b.words)
        if (a_plus or a_minus) and (b_plus or b_minus) and (a_plus, a_minus) != (b_plus, b_minus):
            return f"{sorted((plus | minus) & a.words)} vs {sorted((plus | minus) & b.words)}"
    only_a = {w for w in a.words - b.words if w.isalpha() and len(w) >= 4}
    only_b = {w for w in b.words - a.words if w.isalpha() and len(w) >= 4}
    for x in only_a:
        for y in only_b:
            if _affixed(x, y) or _affixed(y, x):
                return f"{x!r} vs {y!r}"
    return None


def _affixed(x: str, y: str) -> bool:
    """y is x negated by a prefix (install/uninstall), or they swap prefixes (encrypt/decrypt)."""
    for prefix in lx.NEGATING_PREFIXES:
        if y == prefix + x:
            return True
    for p, q in lx.SWAPPED_PREFIXES:
        if x.startswith(p) and y.startswith(q) and len(x) - len(p) >= 3 and x[len(p) :] == y[len(q) :]:
            return True
    return False


def _names(a: Features, b: Features) -> str | None:
    missing_a = [n for n in a.strong if n not in b.vocabulary]
    missing_b = [n for n in b.strong if n not in a.vocabulary]
    if missing_a or missing_b:
        return f"{missing_a or '-'} vs {missing_b or '-'}"
    weak_a = [n for n in a.weak if n not in b.vocabulary]
    weak_b = [n for n in b.weak if n not in a.vocabulary]
    if weak_a and weak_b:
        return f"{weak_a} vs {weak_b}"
    for q in a.quoted:
        if q not in b.lower:
            return f"{q!r} not in the other"
    for q in b.quoted:
        if q not in a.lower:
            return f"{q!r} not in the other"
    shared_a = [n for n in dict.fromkeys(a.ordered) if n in b.ordered]
    shared_b = [n for n in dict.fromkeys(b.ordered) if n in a.ordered]
    if shared_a != shared_b:
        return f"order {shared_a} vs {shared_b}"
    return None


def compare(a: Features, b: Features) -> Verdict:
    """Whether a question with features `a` may be answered with the answer to `b`."""
    if a.negations != b.negations:
        return Verdict(False, f"negation: {a.negations} vs {b.negations}")
    opposite = _opposite(a, b)
    if opposite:
        return Verdict(False, f"opposites: {opposite}")
    if a.numbers != b.numbers:
        return Verdict(False, f"numbers: {list(a.numbers)} vs {list(b.numbers)}")
    if a.dates != b.dates:
        return Verdict(False, f"dates: {list(a.dates)} vs {list(b.dates)}")
    if a.units != b.units:
        return Verdict(False, f"units: {list(a.units)} vs {list(b.units)}")
    names = _names(a, b)
    if names:
        return Verdict(False, f"names: {names}")
    return Verdict(True)


def check(query: str, cached: str) -> Verdict:
    """Whether the answer cached for `cached` may answer `query`."""
    return compare(features(query), features(cached))
