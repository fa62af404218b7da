"""Other ways to read a document: the text a human reader does not see, and the text an encoding hides.

Indirect mode scores every segment of a document, but an instruction is often not a plain segment:
- hidden markup (`hidden_views`): HTML comments, attribute values people do not read (`alt`, `title`,
  `aria-label`, `content`, `data-*`, `placeholder`), elements hidden by CSS (`display:none`, zero font size,
  transparent or white text, off-screen positions, the `hidden` attribute), markdown comments and link titles;
- encodings (`decoded_views`): base64, hex and spaced-out letters (`decoding.encoded_segments`),
  URL-encoding, HTML character references, and ROT13 or reversed text (a segment read that way has more
  English function words than as written).

Each view is a `View`: its span in the original text, what it is, and the text to score. The views are
scored like segments (`indirect.py`); a view's span is what a finding points at.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from pilothouse.guards.injection.decoding import encoded_segments, readable, rot13

__all__ = ["MAX_VIEWS", "View", "decoded_views", "english_share", "hidden_views"]

MAX_VIEWS = 48
"""At most this many views of one kind per document (a bound on work for hostile inputs)."""


@dataclass(frozen=True, slots=True)
class View:
    """A piece of a document read another way: span in the original, kind, the text as read."""

    start: int
    end: int
    kind: str
    text: str


_COMMENT = re.compile(r"<!--(.*?)(?:-->|$)", re.DOTALL)
_ATTRIBUTE = re.compile(
    r"\b(?:alt|title|aria-label|aria-description|content|placeholder|summary|data-[\w-]+)\s*=\s*(?:\"([^\"]{12,})\"|'([^']{12,})')",
    re.IGNORECASE,
)
_HIDDEN_ELEMENT = re.compile(
    r"<(\w+)\b([^>]{0,400}?(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])|"
    r"color\s*:\s*(?:transparent|white|#fff\b|#ffffff\b)|left\s*:\s*-\d{3,}|text-indent\s*:\s*-\d{3,}|max-height\s*:\s*0|height\s*:\s*0(?![.\d]*[1-9])|"
    r"\shidden\b|aria-hidden\s*=\s*[\"']true)[^>]{0,400})>(.{0,2000}?)</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_MARKDOWN_COMMENT = re.compile(r"^\s*\[(?://|comment|_)\]:\s*#?\s*[(\"<](.*?)[)\">]\s*$", re.MULTILINE | re.IGNORECASE)
_LINK_TITLE = re.compile(r"\]\([^)\s]+\s+\"([^\"]{12,})\"\)")
_TAG = re.compile(r"<[^>]{1,400}>")


def _clean(text: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


def hidden_views(text: str) -> list[View]:
    """Text in the document that a person reading it rendered would not see."""
    if "<" not in text and "](" not in text and "[" not in text:
        return []
    found: list[View] = []
    for kind, pattern, group in (
        ("html_comment", _COMMENT, (1,)),
        ("hidden_element", _HIDDEN_ELEMENT, (3,)),
        ("attribute", _ATTRIBUTE, (1, 2)),
        ("markdown_comment", _MARKDOWN_COMMENT, (1,)),
        ("link_title", _LINK_TITLE, (1,)),
    ):
        for match in pattern.finditer(text):
            for g in group:
                if match.group(g):
                    content = _clean(match.group(g))
                    if len(content) >= 12:
                        found.append(View(match.start(g), match.end(g), kind, content))
            if len(found) >= MAX_VIEWS:
                return found
    return found


_URL_ENCODED = re.compile(r"(?<![\w.~+%-])[\w.~+-]{0,40}(?:%[0-9A-Fa-f]{2}[\w.~+-]{0,40}){3,}")
_ENTITIES = re.compile(r"(?:&#(?:x[0-9a-fA-F]{1,6}|\d{1,7});\s?){6,}")
_SEGMENT = re.compile(r"[^\n.!?:]{24,}")
_ENGLISH_WORDS = (
    "the and to of a in is you your that for it on with as this be are not or at by from all any if tell say "
    "user users assistant ai when should must please do will can me my our their them they then than into "
    "about instead only also now"
)
_ENGLISH = frozenset(_ENGLISH_WORDS.split())
_WORD = re.compile(r"[a-z']+")


def english_share(text: str) -> float:
    """The share of a text's words that are common English function words (0 when under five words)."""
    words = _WORD.findall(text.lower())
    if len(words) < 5:
        return 0.0
    return sum(w in _ENGLISH for w in words) / len(words)


def decoded_views(text: str) -> list[View]:
    """Encoded runs decoded to readable text, and segments that read as English when ROT13-ed or reversed."""
    views = [View(e.start, e.end, e.encoding, e.decoded) for e in encoded_segments(text)]
    for match in _URL_ENCODED.finditer(text) if "%" in text else ():
        decoded = unquote(match.group().replace("+", " "))
        if decoded != match.group() and readable(decoded):
            views.append(View(match.start(), match.end(), "url_encoding", decoded))
    for match in _ENTITIES.finditer(text):
        decoded = html.unescape(match.group())
        if readable(decoded):
            views.append(View(match.start(), match.end(), "html_entities", decoded))
    for match in _SEGMENT.finditer(text):
        if len(views) >= MAX_VIEWS:
            break
        segment = unicodedata.normalize("NFKC", match.group())
        plain = english_share(segment)
        if plain >= 0.3:
            continue
        for kind, candidate in (("rot13", rot13(segment)), ("reversed", segment[::-1])):
            if english_share(candidate) >= max(0.22, plain + 0.15):
                views.append(View(match.start(), match.end(), kind, candidate))
                break
    return views[:MAX_VIEWS]
