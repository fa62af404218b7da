"""A question as the contrast check sees it: content words, and the meaning-bearing closed-class words.

`analyse(text)` tokenises (contrast_normalise), puts misspelt closed-class words right (contrast_spelling),
rewrites request frames (contrast_frames), then gives each
word a class: a number (digits, number words, ordinals, "twice"), a date (month, weekday, "tomorrow", am/pm),
a time frame ("week", "daily" = per day), a unit or currency, one of the closed classes of contrast_words
(negation, question word, modal, tense, degree, quantifier, relation), a function word (dropped), or a content
word (with its lemma; names and identifiers flagged to be matched exactly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from pilothouse.gateway.cache import contrast_words as cw
from pilothouse.gateway.cache.contrast_frames import rewrite
from pilothouse.gateway.cache.contrast_morphology import lemma
from pilothouse.gateway.cache.contrast_normalise import Token, tokenize
from pilothouse.gateway.cache.contrast_spelling import correct


def _split(text: str) -> list[str]:
    return text.split()


# Words around which swapping two things changes the question ("X than Y", "from X to Y", "X vs Y").
PIVOTS = frozenset({"than", "vs", "to", "into", "from", "over", "instead", "or", "against", "per", "onto"})
_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.:/]\d+)*)([a-z%°]*)")
_ORDINAL_SUFFIX = frozenset({"st", "nd", "rd", "th"})
_NOT_A_NUMBER_BEFORE_ONE = frozenset({"which", "this", "that", "the", "each", "every", "any", "no", "some", "a"})
_TEMPERATURE = frozenset({"c", "f", "k_temp"})
_PERSON = {
    **dict.fromkeys(_split("i me my mine myself we us our ours ourselves"), 1),
    **dict.fromkeys(_split("you your yours yourself yourselves u ur"), 2),
    **dict.fromkeys(_split("he him his himself she her hers herself they them their theirs themselves"), 3),
}
_DIRECTION = {"from": "from", "to": "to", "into": "to", "onto": "to", "toward": "to", "towards": "to"}
_AUX = frozenset(
    _split("do does did is are am was were be can could should would will must may might shall have has had")
)


@dataclass(frozen=True, slots=True)
class Item:
    """One meaningful word of a question."""

    pos: int  # its index among the question's tokens (for order checks)
    text: str  # as written
    cls: str  # "content", or the closed class: "negation", "number", "date", "time_frame", "unit", ...
    key: str  # content: the lemma; otherwise the canonical form ("3", "per", "week", "km")
    name: bool = False  # a name or identifier: matched exactly
    prep: str | None = None  # "from" or "to" when one stands right before it ("from Paris", "into an int")


@dataclass(frozen=True, slots=True)
class Analysis:
    text: str
    content: tuple[Item, ...]
    marked: tuple[Item, ...]  # meaning-bearing closed-class words, numbers, dates, units, time frames
    pivots: tuple[tuple[int, str], ...]  # (position, word) of comparison and direction words
    passive: bool  # an agent "by": "X was written by Y" may put Y before X
    aux: tuple[int, ...]  # positions of auxiliaries and modals (a question's "does Alice owe Bob")
    words: tuple[str, ...] = ()  # every token, lower case (initials may span function words: "single sign on")
    persons: tuple[int, ...] = ()  # grammatical person of each pronoun, in order ("do I owe you": 1, 2)


def _decimal(raw: str) -> str:
    try:
        return format(Decimal(raw.replace(",", "")).normalize(), "f")
    except InvalidOperation:
        return raw


def _number_token(tok: Token, out: list[Item], pos: int) -> bool:
    """Digits, with a unit, ordinal suffix, scale or am/pm glued on; False when it is an identifier (2fa)."""
    m = _NUMBER.fullmatch(tok.low)
    if m is None:
        return False
    digits, suffix = m.groups()
    value = _decimal(digits) if re.fullmatch(r"[\d,]+(?:\.\d+)?", digits) else digits
    if not suffix:
        out.append(Item(pos, tok.text, "number", value))
    elif suffix in _ORDINAL_SUFFIX:
        out.append(Item(pos, tok.text, "number", value + "th"))
    elif suffix in cw.SCALES:
        out.append(Item(pos, tok.text, "number", _decimal(str(Decimal(value) * cw.SCALES[suffix]))))
    elif suffix in ("am", "pm"):
        out += [Item(pos, tok.text, "number", value), Item(pos, tok.text, "date", suffix)]
    elif suffix in cw.UNITS or suffix in cw.AFTER_NUMBER or suffix in cw.TIME_FRAMES:
        unit = cw.UNITS.get(suffix) or cw.AFTER_NUMBER.get(suffix) or cw.TIME_FRAMES[suffix]
        cls = "time_frame" if unit in cw.TIME_FRAMES.values() else "unit"
        out += [Item(pos, tok.text, "number", value), Item(pos, tok.text, cls, unit)]
    else:
        return False
    return True


def _number_words(tokens: list[Token], i: int) -> tuple[str, int] | None:
    """A number written in words starting at token i ("twenty one", "a hundred and five"): (value, tokens)."""
    total = current = Decimal(0)
    seen = False
    j = i
    while j < len(tokens):
        w = tokens[j].low
        if w in cw.UNITS_ONES and not (w == "one" and j == i and i and tokens[i - 1].low in _NOT_A_NUMBER_BEFORE_ONE):
            current += Decimal(str(cw.UNITS_ONES[w]))
        elif w in cw.TENS:
            current += cw.TENS[w]
        elif w in cw.SCALES and w != "k" and (seen or j == i):
            scale = cw.SCALES[w]
            if scale == 100:
                current = (current or Decimal(1)) * 100
            else:
                total += (current or Decimal(1)) * scale
                current = Decimal(0)
        elif (
            w == "and"
            and seen
            and j + 1 < len(tokens)
            and (tokens[j + 1].low in cw.UNITS_ONES or tokens[j + 1].low in cw.TENS)
        ):
            pass
        else:
            break
        seen = True
        j += 1
    if not seen:
        return None
    return _decimal(str(total + current)), j - i


def _time_frame(low: str) -> str | None:
    for form in (low, low[:-1] if low.endswith("s") else low, lemma(low)):
        if form in cw.TIME_FRAMES:
            return cw.TIME_FRAMES[form]
    return None


def _classify(tokens: list[Token]) -> Analysis:
    content: list[Item] = []
    marked: list[Item] = []
    pivots: list[tuple[int, str]] = []
    passive = False
    i = 0
    prev_number = False
    while i < len(tokens):
        tok, w = tokens[i], tokens[i].low
        nxt = tokens[i + 1].low if i + 1 < len(tokens) else ""
        prev = tokens[i - 1].low if i else ""
        number_before = prev_number
        prev_number = False
        if tok.low[0].isdigit() and _number_token(tok, marked, i):
            prev_number = True
            i += 1
            continue
        words_number = None if tok.name else _number_words(tokens, i)
        if words_number is not None:
            marked.append(Item(i, tok.text, "number", words_number[0]))
            i += words_number[1]
            prev_number = True
            continue
        if w in PIVOTS:
            pivots.append((i, "to" if w in ("into", "onto") else w))
        if w == "by":
            passive = True
        if w in ("once", "twice", "thrice"):
            marked.append(Item(i, tok.text, "number", {"once": "1x", "twice": "2x", "thrice": "3x"}[w]))
        elif (
            w in cw.MONTHS
            and (
                w not in ("may", "march")  # also a modal and a verb: a month only by its capital or a number beside it
                or (tok.text[0].isupper() and not tok.start)
                or number_before
                or nxt[:1].isdigit()
            )
        ):
            marked.append(Item(i, tok.text, "date", cw.MONTHS[w]))
        elif w in cw.WEEKDAYS or w in cw.DAY_WORDS or (w.endswith("s") and w[:-1] in cw.WEEKDAYS):
            marked.append(Item(i, tok.text, "date", cw.WEEKDAYS.get(w, cw.WEEKDAYS.get(w[:-1], w))))
        elif w in ("am", "pm", "a.m", "p.m") and number_before:
            marked.append(Item(i, tok.text, "date", w.replace(".", "")))
        elif w in ("second", "seconds") and not (
            number_before or prev in ("a", "per", "every", "each") or w == "seconds"
        ):
            marked.append(Item(i, tok.text, "number", "2th"))
        elif not tok.name and (frame := _time_frame(w)) is not None:
            marked.append(Item(i, tok.text, "time_frame", frame))
        elif w in cw.ADVERB_FRAMES and not tok.name:
            marked += [Item(i, tok.text, "relation", "per"), Item(i, tok.text, "time_frame", cw.ADVERB_FRAMES[w])]
        elif w in cw.ORDINALS:
            marked.append(Item(i, tok.text, "number", f"{cw.ORDINALS[w]}th"))
        elif w in cw.UNITS and (
            not tok.name or number_before or (len(w) > 3 and w.isalpha() and tok.text[1:].islower())
        ):  # "Celsius" and "5 MB" are units, a lone "MB" may be a name
            marked.append(Item(i, tok.text, "unit", cw.UNITS[w]))
        elif w in cw.AFTER_NUMBER and number_before:
            unit = cw.AFTER_NUMBER[w]
            cls = "time_frame" if unit in cw.TIME_FRAMES.values() else "unit"
            marked.append(Item(i, tok.text, cls, unit))
        elif (closed := cw.word_class(w)) is not None and not tok.name:
            if closed[0] != "function":
                marked.append(Item(i, tok.text, closed[0], closed[1]))
        elif w in _DIRECTION:
            pass
        else:
            content.append(Item(i, tok.text, "content", w if tok.name else lemma(w), tok.name))
        i += 1
    if any(m.cls == "unit" and m.key in _TEMPERATURE for m in marked):  # "30 °C" = "30 degrees Celsius"
        marked = [m for m in marked if not (m.cls == "unit" and m.key == "degree")]
    aux = tuple(i for i, t in enumerate(tokens) if t.low in _AUX)
    content, marked = _with_direction(tokens, content), _with_direction(tokens, marked)
    persons = tuple(_PERSON[t.low] for t in tokens if t.low in _PERSON)
    words = tuple(t.low for t in tokens)
    return Analysis("", tuple(content), tuple(marked), tuple(pivots), passive, aux, words, persons)


def _with_direction(tokens: list[Token], items: list[Item]) -> list[Item]:
    """Items with the "from"/"to" that governs them: the nearest such word up to three tokens before, with no
    other item between ("from the old workspace", "into an int")."""
    starts = {m.pos for m in items}
    out = []
    for m in items:
        prep = None
        for k in range(m.pos - 1, max(m.pos - 4, -1), -1):
            if tokens[k].low in _DIRECTION:
                prep = _DIRECTION[tokens[k].low]
                break
            if k in starts:
                break
        out.append(replace(m, prep=prep) if prep else m)
    return out


@lru_cache(maxsize=4096)
def analyse(text: str) -> Analysis:
    """The content words and marked words of `text` (cached per text)."""
    return replace(_classify(rewrite(correct(tokenize(text)))), text=text)
