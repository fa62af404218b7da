"""Undoing the cheap disguises before pattern matching: invisible characters, homoglyphs, case.

`normalize(text)` returns the text as a detector should read it (invisible and bidi control characters
dropped, confusable Cyrillic/Greek letters and compatibility forms such as fullwidth or mathematical letters
mapped to ASCII, lower-cased) together with the offset of every output character in the original text, so a
match in the normalised text is reported as a span of the text the caller sent.

It also lists what it removed or mapped (`Normalized.invisible`, `Normalized.homoglyph_words`), which the
heuristics report as findings of their own: hiding characters from a human reviewer is itself a signal.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["INVISIBLE", "Normalized", "normalize", "tag_payload"]

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e")
"""Zero-width and format characters that render as nothing (soft hyphen included)."""
BIDI_OVERRIDE = frozenset("\u202d\u202e")
"""Left-to-right and right-to-left override: they reorder what a reviewer sees (Trojan Source)."""
BIDI_OTHER = frozenset("\u202a\u202b\u202c\u2066\u2067\u2068\u2069")
"""Bidi embeddings and isolates: legitimate in right-to-left text, odd elsewhere."""
_TAG_FIRST, _TAG_LAST = 0xE0000, 0xE007F
"""Unicode tag characters: invisible copies of ASCII ("ASCII smuggling")."""

INVISIBLE = ZERO_WIDTH | BIDI_OVERRIDE | BIDI_OTHER

# Letters of other scripts that look like Latin ones (a subset of Unicode's confusables.txt: the ones
# used in practice to dodge keyword filters).
_CONFUSABLE_PAIRS = (
    "\u0430a \u0435e \u043eo \u0440p \u0441c \u0443y \u0445x \u0456i \u0458j \u0455s \u0501d \u051bq "
    "\u051dw \u04bbh \u04cfl \u0261g \u0251a \u028fy \u1d00a \u0410A \u0412B \u0415E \u041aK \u041cM "
    "\u041dH \u041eO \u0420P \u0421C \u0422T \u0425X \u0406I \u0408J \u0405S \u03b1a \u03b2b \u03b5e "
    "\u03b9i \u03bak \u03bdv \u03bfo \u03c1p \u03c4t \u03c5u \u03c7x \u03f2c \u03f3j \u0391A \u0392B "
    "\u0395E \u0396Z \u0397H \u0399I \u039aK \u039cM \u039dN \u039fO \u03a1P \u03a4T \u03a5Y \u03a7X "
)
CONFUSABLES: dict[str, str] = {pair[0]: pair[1] for pair in _CONFUSABLE_PAIRS.split()}
"""Look-alike letter -> the Latin letter it imitates."""

_LATIN_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalised text and the way back to the original's offsets."""

    text: str
    """Lower-cased, invisible characters dropped, homoglyphs and compatibility forms mapped to ASCII."""
    origin: tuple[int, ...] | None
    """`origin[i]` is the offset in the original of `text[i]`; None when the two are aligned one to one."""
    length: int
    """The length of the original text."""
    invisible: tuple[tuple[int, str], ...] = ()
    """(offset, character) of every invisible, bidi or tag character dropped."""
    homoglyph_words: tuple[tuple[int, int], ...] = field(default=())
    """Spans (in the original) of words that mix Latin letters with look-alike letters of another script."""

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span in the original text of `text[start:end]`."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.length, self.length
        last = self.origin[max(start, end - 1)] + 1 if end > start else self.origin[start]
        return self.origin[start], min(last, self.length)


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One character as the detector reads it: confusables and compatibility forms folded, lower case."""
    mapped = CONFUSABLES.get(char)
    if mapped is not None:
        return mapped.lower()
    folded = unicodedata.normalize("NFKC", char).lower()
    # NFKC may decompose to an ASCII letter plus combining marks ("ﬁ" stays letters; "é" is kept as is).
    return folded


def _is_tag(char: str) -> bool:
    return _TAG_FIRST <= ord(char) <= _TAG_LAST


def tag_payload(text: str) -> list[tuple[int, int, str]]:
    """Runs of Unicode tag characters decoded to the ASCII they mirror: (start, end, decoded).

    A run right after the black flag (U+1F3F4) is an emoji subdivision flag, not a payload, and is skipped."""
    runs: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        if _is_tag(text[i]):
            j = i
            while j < n and _is_tag(text[j]):
                j += 1
            if not (i > 0 and text[i - 1] == "\U0001f3f4"):
                decoded = "".join(chr(ord(c) - _TAG_FIRST) for c in text[i:j] if 0x20 <= ord(c) - _TAG_FIRST < 0x7F)
                runs.append((i, j, decoded))
            i = j
        else:
            i += 1
    return runs


def _mixed_script_words(text: str) -> tuple[tuple[int, int], ...]:
    spans = []
    for match in _LATIN_WORD.finditer(text):
        word = match.group()
        if word.isascii():
            continue
        has_confusable = any(c in CONFUSABLES for c in word)
        has_latin = any("a" <= c.lower() <= "z" for c in word)
        if has_confusable and has_latin:
            spans.append((match.start(), match.end()))
    return tuple(spans)


def normalize(text: str) -> Normalized:
    """The text as the detectors read it; see the module docstring."""
    if text.isascii():
        return Normalized(text=text.lower(), origin=None, length=len(text))
    out: list[str] = []
    origin: list[int] = []
    invisible: list[tuple[int, str]] = []
    for index, char in enumerate(text):
        if char in INVISIBLE or _is_tag(char):
            invisible.append((index, char))
            continue
        if char.isascii():
            out.append(char.lower())
            origin.append(index)
            continue
        folded = _fold(char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return Normalized(
        text="".join(out),
        origin=tuple(origin),
        length=len(text),
        invisible=tuple(invisible),
        homoglyph_words=_mixed_script_words(text),
    )
