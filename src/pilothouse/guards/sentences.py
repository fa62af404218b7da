"""Sentence spans and scan windows: how the embedding scanners (toxicity, denied topics, system-prompt leakage)
cut a text into pieces they can embed.

MiniLM reads at most 256 tokens, and a short hateful sentence inside a long answer is diluted when the whole
answer is embedded as one vector. So scanners embed windows of a few consecutive sentences, each with its
character span in the original text (findings point at the window that matched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<![.!?\u3002\uff01\uff1f])[.!?\u3002\uff01\uff1f]++[\"')\]]*+(?=\s)|\n[^\S\n]*+\n|\n")
"""Where a sentence ends: terminal punctuation before a space, a blank line, or a line break. A run of
punctuation is only tried from its start and quantifiers are possessive, so no input makes this quadratic."""

MIN_WINDOW_CHARS = 200
MAX_WINDOW_CHARS = 1000
"""About 250 tokens of English: the most MiniLM reads of one window."""
TARGET_WINDOWS = 64
"""Long texts get wider windows (up to MAX_WINDOW_CHARS) so their number stays near this."""


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of the scanned text: `text[start:end]` with surrounding whitespace trimmed."""

    start: int
    end: int
    text: str


def sentence_spans(text: str) -> list[Span]:
    """The sentences of `text` (non-empty, whitespace-trimmed), with their offsets; a text without
    sentence breaks is one sentence."""
    spans: list[Span] = []
    begin = 0
    for match in _SENTENCE_END.finditer(text):
        _append(spans, text, begin, match.end())
        begin = match.end()
    _append(spans, text, begin, len(text))
    return spans


def _append(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    offset = start + (len(piece) - len(piece.lstrip()))
    spans.append(Span(offset, offset + len(stripped), stripped))


def windows(text: str, *, max_chars: int | None = None) -> list[Span]:
    """Consecutive sentences merged up to a window size that grows with the text (MIN_WINDOW_CHARS for short
    texts, up to MAX_WINDOW_CHARS); a sentence longer than the window is cut into window-sized pieces."""
    if max_chars is None:
        max_chars = min(MAX_WINDOW_CHARS, max(MIN_WINDOW_CHARS, len(text) // TARGET_WINDOWS))
    out: list[Span] = []
    start = end = -1
    for sentence in sentence_spans(text):
        for piece in _cut(sentence, max_chars):
            if start >= 0 and piece.end - start <= max_chars:
                end = piece.end
                continue
            if start >= 0:
                out.append(Span(start, end, text[start:end]))
            start, end = piece.start, piece.end
    if start >= 0:
        out.append(Span(start, end, text[start:end]))
    return out


def scan_pieces(text: str) -> list[Span]:
    """What an embedding scanner compares: each sentence on its own while the text has at most TARGET_WINDOWS
    of them (a short hateful or off-topic sentence is not diluted by its neighbours), windows beyond."""
    sentences = sentence_spans(text)
    if len(sentences) <= TARGET_WINDOWS and all(s.end - s.start <= MAX_WINDOW_CHARS for s in sentences):
        return sentences
    return windows(text)


def _cut(sentence: Span, max_chars: int) -> list[Span]:
    if sentence.end - sentence.start <= max_chars:
        return [sentence]
    pieces = []
    for offset in range(0, len(sentence.text), max_chars):
        chunk = sentence.text[offset : offset + max_chars]
        if chunk.strip():
            pieces.append(Span(sentence.start + offset, sentence.start + offset + len(chunk), chunk))
    return pieces
