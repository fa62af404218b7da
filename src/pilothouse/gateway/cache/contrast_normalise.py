"""Text to tokens for the contrast check: quotes, contractions, and tokens that keep C++, Node.js and v2.3.

An apostrophe is never a quote mark: contractions are expanded first ("isn't" -> "is not", "I'm" -> "I am",
"what's" -> "what is"), possessive 's is dropped, and a single quote opens a quoted phrase only where it
stands before a word and is closed after one ('eventual consistency'), never inside a word.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u02bc": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
    }
)
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bcan'?t\b|\bcannot\b", "can not"),
        (r"\bwon'?t\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain'?t\b", "is not"),
        (r"\b(do|does|did|is|are|was|were|has|have|had|would|should|could|must|might|need)n'?t\b", r"\1 not"),
        (r"\b(i)'?m\b", r"\1 am"),
        (r"\b(you|we|they|who|what)'re\b", r"\1 are"),
        (r"\b(i|you|we|they|who|would|should|could|might|must)'ve\b", r"\1 have"),
        (r"\b(i|you|we|they|he|she|it|that|there|who|what)'ll\b", r"\1 will"),
        (r"\b(i|you|we|they|he|she|it|that|there|who|what|how|where|why)'d\b", r"\1 would"),
        (r"\blet's\b", "let us"),
        (r"\b(what|where|who|how|when|why|that|it|there|here|he|she|this|which|what)'?s\b", r"\1 is"),
        (r"\b(gonna)\b", "going to"),
        (r"\b(wanna)\b", "want to"),
        (r"\b(gotta)\b", "have to"),
        (r"(?<=\w)'s\b", ""),  # possessive
        (r"(?<=s)'(?=\s|$|[,.;:!?])", ""),  # plural possessive
    )
)
# A quoted phrase: double quotes anywhere; single quotes only standing outside words.
_QUOTED = re.compile(r'"([^"\n]{1,80})"|(?<![\w\'])\'([^\'\n]{1,80}?)\'(?![\w])')
_TOKEN = re.compile(
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])"  # 1,000 / 12,500.50
    r"|\d+(?:[.:/]\d+)*[a-z%°]*"  # 3.5 / 9:30 / 1/5/2024, with a unit glued on (5km, 20%, 2nd)
    r"|[a-z](?:\.[a-z])+(?=\.|\b)"  # a.m / e.g
    r"|[a-z0-9_]+(?:[.+#/\-_:'][a-z0-9_]+)*[+#]*"  # words, Node.js, C++, C#, wi-fi, snake_case
    r"|[$€£¥%°]",
    re.IGNORECASE,
)
_SENTENCE_END = frozenset(".!?:;\n")


@dataclass(slots=True)
class Token:
    """One word of a question as written (after contractions), with what its context says about it."""

    text: str  # as written
    low: str  # lower case
    start: bool = False  # first word of a sentence: its capital proves nothing
    quoted: bool = False  # inside a quoted phrase: matched exactly
    name: bool = False  # a name or identifier (set by `mark_names`): matched exactly


def expand(text: str) -> str:
    """Unicode folded, quote marks made plain, contractions expanded."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _split_hyphens(raw: str) -> list[str]:
    """ "wi-fi" and "e-mail" join ("wifi", "email"); "two-factor" and "follow-up" split."""
    if "-" not in raw or not raw.replace("-", "").isalpha():
        return [raw]
    parts = [p for p in raw.split("-") if p]
    if any(len(p) <= 2 for p in parts):
        return ["".join(parts)]
    return parts


def tokenize(text: str) -> list[Token]:
    """The tokens of `text` (expanded first), marked as quoted or sentence-initial."""
    text = expand(text)
    quoted_spans = [m.span() for m in _QUOTED.finditer(text)]
    tokens: list[Token] = []
    for m in _TOKEN.finditer(text):
        i = m.start() - 1
        while i >= 0 and text[i] in " \t\"'([*-":
            i -= 1
        start = i < 0 or text[i] in _SENTENCE_END
        quoted = any(a < m.start() < b for a, b in quoted_spans)
        raw = m.group(0).strip("'")
        for j, part in enumerate(_split_hyphens(raw)):
            tokens.append(Token(part, part.lower(), start=start and j == 0, quoted=quoted))
    mark_names(tokens)
    return tokens


def _looks_named(raw: str, start: bool) -> bool:
    if any(c.isdigit() for c in raw) and not raw.replace(".", "").replace(",", "").isdigit():
        return True  # v2.3, python3, iOS17, 2FA
    if any(c in raw for c in ".+#/_:") or raw.endswith(("+", "#")):
        return True  # Node.js, C++, C#, TCP/IP, snake_case
    if not raw[0].isalpha():
        return False
    inner_caps = any(c.isupper() for c in raw[1:])
    return inner_caps or (raw[0].isupper() and not start)


def mark_names(tokens: list[Token]) -> None:
    """Mark names and identifiers: words with digits or inner punctuation, quoted words, acronyms and
    CamelCase, and capitalised words not at a sentence start. When most words are capitalised (Title Case
    or shouting), capitals prove nothing and only the first three kinds count."""
    alpha = [t for t in tokens if t.text.isalpha()]
    capitalised = sum(1 for t in alpha if t.text[0].isupper())
    caps_mean_nothing = len(alpha) >= 3 and capitalised * 2 > len(alpha)
    for t in tokens:
        if t.low in ("i", "ok", "okay"):
            continue
        if t.quoted:
            t.name = True
        elif caps_mean_nothing:
            t.name = _looks_named(t.text.lower(), True)
        else:
            t.name = _looks_named(t.text, t.start)
