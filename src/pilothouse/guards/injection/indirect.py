"""Indirect mode: does any part of a document or tool result speak to the AI that reads it?

A document is read several ways and the highest score wins, so a buried instruction is not diluted by the
rest of the document:
1. every segment (sentence, line, table cell run) by the trained indirect head (`model.SegmentHead`: words
   and the register cues of `cues.py`);
2. every segment by the address rules of `address.py`: a vocative or conditional address to an AI reader with
   a request ("AI summarizers: describe ...", "assistants handling this invite should ..."), in English or,
   from a lexicon of AI-reader words, in another language than the rest of the document;
3. the text a human does not see and the text an encoding hides (`views.py`: HTML comments, hidden
   elements, attributes; base64, hex, URL-encoding, character references, ROT13, reversed, spaced letters),
   each scored by 1 and 2, and an encoded run that decodes to an English request is suspicious by itself
   (documents encode data, not sentences addressed to someone).

Scores are on the scanner scale (0.5: the operating point); each finding names what was found and where.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from pilothouse.guards.injection.address import (
    HIDDEN_LABEL,
    TRANSCRIPT,
    ai_mention,
    directive,
    english_address,
    foreign_address,
    foreign_candidate,
)
from pilothouse.guards.injection.cues import segment_cues
from pilothouse.guards.injection.features import segments
from pilothouse.guards.injection.model import InjectionModel, calibrate
from pilothouse.guards.injection.normalize import normalize
from pilothouse.guards.injection.views import View, decoded_views, english_share, hidden_views
from pilothouse.guards.scanner import Finding

__all__ = ["ENCODED_REQUEST_SCORE", "RULES_VERSION", "score_document"]

RULES_VERSION = "indirect-rules-1"
"""Named in every finding; bump it whenever the address rules, the lexicons or the views change."""

ENCODED_REQUEST_SCORE = 0.85
"""An encoded run that decodes to an English sentence with a request, a "you"/"user" or an AI reader."""
_Offer = Callable[[str, int, int, float, str], None]
_ADDRESSEE = re.compile(r"\b(?:you|your|user|users|reader|readers|customer|assistant|agent|model|ai)\b")


def _head_best(model: InjectionModel, normalized: str, segments: int) -> tuple[float, tuple[int, int]]:
    """The head's document score from the most AI-addressed segment of `normalized` (and its span)."""
    spans, cues = segment_cues(normalized)
    if not spans:
        return 0.0, (0, 0)
    head = model.indirect
    logits = [head.logit(model.ids(normalized[s:e]), row) for (s, e), row in zip(spans, cues, strict=True)]
    best = max(range(len(spans)), key=logits.__getitem__)
    probability = head.document_probability(logits[best], max(segments, len(spans)))
    return round(calibrate(probability, head.threshold), 6), spans[best]


def _fold(text: str) -> str:
    """Lower case and compatibility forms folded, without the homoglyph mapping (which would turn Cyrillic
    words into Latin look-alikes)."""
    return unicodedata.normalize("NFKC", text).lower()


def score_document(text: str, head: InjectionModel | None = None) -> tuple[float, tuple[Finding, ...]]:
    """(score, findings) of a document in indirect mode; findings from 0.5 up, at most one per kind. With
    `head`, the trained indirect head also scores every segment and view (off by default: see the module
    docstring)."""
    norm = normalize(text)
    if not norm.text.strip():
        return 0.0, ()
    best: dict[str, Finding] = {}

    def offer(kind: str, start: int, end: int, score: float, detail: str) -> None:
        if score >= 0.5 and (kind not in best or best[kind].score < score):
            best[kind] = Finding(kind, start, end, round(score, 6), detail)

    segments = max(1, norm.text.count("\n") + 1)
    if head is not None:
        head_score, (s, e) = _head_best(head, norm.text, 1)
        offer("embedded_instruction", *norm.span(s, e), head_score, f"addressed to the AI ({head.version})")
    folded = _fold(text)
    transcript = bool(TRANSCRIPT.search(norm.text))
    for start, end in _address_spans(norm.text):
        o_start, o_end = norm.span(start, end)
        address = english_address(norm.text[start:end], transcript=transcript)
        offer("addressed_to_ai", o_start, o_end, address, f"names an AI reader and asks ({RULES_VERSION})")
        if foreign_candidate(folded[o_start:o_end]):
            line_start = folded.rfind("\n", 0, o_start) + 1
            line_end = folded.find("\n", o_end)
            rest = folded[:line_start] + "\n" + (folded[line_end:] if line_end >= 0 else "")
            foreign = foreign_address(folded[o_start:o_end], rest)
            offer(
                "foreign_instruction",
                o_start,
                o_end,
                foreign,
                f"an AI reader addressed in another language ({RULES_VERSION})",
            )
    for match in HIDDEN_LABEL.finditer(norm.text):
        window = norm.text[match.start() : match.end() + 300]
        if directive(window):
            offer("addressed_to_ai", *norm.span(*match.span()), 0.9, f"a label for AI instructions ({RULES_VERSION})")
    for view in hidden_views(text) + decoded_views(text):
        _score_view(head, view, folded, segments, offer)
    score = max((f.score for f in best.values()), default=0.0)
    return score, tuple(sorted(best.values(), key=lambda f: (f.start, f.end, f.kind)))


_ESCAPED_BREAK = re.compile(r"\\n")


def _address_spans(normalized: str) -> list[tuple[int, int]]:
    """Segments for the address rules: `features.segments`, also cut at escaped line breaks (`\\n` in
    calendar files and JSON strings), where a new speaker often starts; a short segment that ends like a
    salutation ("Hi Claude!", "NOTE TO AI ASSISTANTS:") is joined to the next one, which says what it wants."""
    cut: list[tuple[int, int]] = []
    for start, end in segments(normalized):
        at = start
        for match in _ESCAPED_BREAK.finditer(normalized, start, end):
            if match.start() > at:
                cut.append((at, match.start()))
            at = match.end()
        if end > at:
            cut.append((at, end))
    out: list[tuple[int, int]] = []
    for start, end in cut:
        if out and out[-1][1] - out[-1][0] <= 60 and _SALUTATION.search(normalized[out[-1][0] : out[-1][1]]):
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


_SALUTATION = re.compile(r"^[^:!,\]—]*[:!,\]—-]\W{0,3}$")


def _score_view(head: InjectionModel | None, view: View, document: str, segments: int, offer: _Offer) -> None:
    """Score one hidden or decoded view of `document` (folded: lower case, compatibility forms)."""
    encoded = view.kind not in ("html_comment", "hidden_element", "attribute", "markdown_comment", "link_title")
    kind = "encoded_instruction" if encoded else "hidden_instruction"
    where = f"{view.kind.replace('_', ' ')}"
    vn = normalize(view.text).text
    address = english_address(vn)
    foreign = foreign_address(_fold(view.text), "" if encoded else document)
    learned = _head_best(head, vn, segments)[0] if head is not None else 0.0
    offer(kind, view.start, view.end, max(address, foreign, learned), f"{where}: addressed to the AI ({RULES_VERSION})")
    if encoded and _sentence_like(vn) and (directive(vn) or _ADDRESSEE.search(vn) or ai_mention(vn)):
        offer(kind, view.start, view.end, ENCODED_REQUEST_SCORE, f"{where}: decodes to a request ({RULES_VERSION})")


_PLAIN_WORD = re.compile(r"[a-z']+[,.;:!?]?")


def _sentence_like(text: str) -> bool:
    """Five or more words, most of them plain words (a sentence, not a query string or a data blob)."""
    tokens = text.split()
    plain = sum(bool(_PLAIN_WORD.fullmatch(t)) for t in tokens)
    return plain >= 5 and plain >= 0.7 * len(tokens) and english_share(text) >= 0.15
