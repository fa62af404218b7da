"""Structure-aware, token-aware chunking with overlap.

A loaded document is a list of sections, each under its headings (Markdown and HTML headers, PDF pages). A
section is cut at paragraphs (blank lines), a paragraph at sentences, and a sentence longer than a chunk at
words; the pieces are packed greedily into chunks of at most `max_tokens` tokens as the embedding model counts
them (MiniLM's WordPiece tokenizer: what the model reads is what is counted), never across a section boundary.
Consecutive chunks of a section share up to `overlap_tokens` tokens: the next chunk starts with the last whole
sentences of the previous one, so a fact cut by a chunk boundary is whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pilothouse.guards.sentences import sentence_spans

TokenCounter = Callable[[list[str]], list[int]]
"""Token counts of texts, without the model's special tokens."""

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")


@dataclass(frozen=True, slots=True)
class Section:
    """Text under its headings (outermost first); `page` for PDF pages."""

    text: str
    headings: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    headings: tuple[str, ...]
    tokens: int
    page: int | None = None


@dataclass(frozen=True, slots=True)
class ChunkingOptions:
    max_tokens: int = 200
    overlap_tokens: int = 40

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError(f"chunk size must be at least 16 tokens, not {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError(
                f"overlap must be between 0 and half the chunk size ({self.max_tokens // 2}), not {self.overlap_tokens}"
            )


def _units(section_text: str) -> list[str]:
    """Sentences, with a paragraph break marked by an empty string so packing prefers to cut there."""
    out: list[str] = []
    for paragraph in _PARAGRAPH.split(section_text):
        sentences = [s.text for s in sentence_spans(paragraph)]
        if sentences:
            if out:
                out.append("")
            out.extend(sentences)
    return out


def _split_long(text: str, tokens: int, limit: int, count: TokenCounter) -> list[tuple[str, int]]:
    """A piece over `limit` tokens cut at words into pieces within it (halving until each fits)."""
    if tokens <= limit:
        return [(text, tokens)]
    words = text.split()
    if len(words) <= 1:  # one enormous "word": cut by characters
        half = max(1, len(text) // 2)
        parts = [text[:half], text[half:]]
    else:
        half = len(words) // 2
        parts = [" ".join(words[:half]), " ".join(words[half:])]
    counts = count(parts)
    out: list[tuple[str, int]] = []
    for part, n in zip(parts, counts, strict=True):
        out.extend(_split_long(part, n, limit, count))
    return out


def chunk_sections(sections: Sequence[Section], count: TokenCounter, options: ChunkingOptions) -> list[Chunk]:
    """The chunks of a document, in order (see the module docstring)."""
    chunks: list[Chunk] = []
    for section in sections:
        units = _units(section.text)
        sentences = [u for u in units if u]
        if not sentences:
            continue
        counts = iter(count(sentences))
        pieces: list[tuple[str, int]] = []  # ("", 0) marks a paragraph break
        for unit in units:
            if unit:
                pieces.extend(_split_long(unit, next(counts), options.max_tokens, count))
            else:
                pieces.append(("", 0))
        chunks.extend(_pack(pieces, section, options))
    return chunks


def _pack(pieces: list[tuple[str, int]], section: Section, options: ChunkingOptions) -> list[Chunk]:
    out: list[Chunk] = []
    current: list[tuple[str, int]] = []
    size = 0
    fresh = 0  # pieces in `current` not carried over from the previous chunk

    def emit() -> None:
        text = _join(current)
        if text:
            out.append(Chunk(text, section.headings, size, section.page))

    for text, tokens in pieces:
        if not text:  # paragraph break: keep it unless the chunk is empty
            if current and current[-1][0]:
                current.append(("", 0))
            continue
        if current and size + tokens > options.max_tokens and fresh:
            emit()
            current, size = _overlap(current, options.overlap_tokens, options.max_tokens - tokens)
            fresh = 0
        current.append((text, tokens))
        size += tokens
        fresh += 1
    if fresh:
        emit()
    return out


def _overlap(current: list[tuple[str, int]], overlap: int, room: int) -> tuple[list[tuple[str, int]], int]:
    """The trailing whole sentences of a chunk, up to `overlap` tokens, that still leave room for the next."""
    kept: list[tuple[str, int]] = []
    size = 0
    for text, tokens in reversed(current):
        if not text:
            continue
        if size + tokens > min(overlap, room):
            break
        kept.insert(0, (text, tokens))
        size += tokens
    return kept, size


def _join(pieces: list[tuple[str, int]]) -> str:
    parts: list[str] = []
    for text, _ in pieces:
        if not text:
            if parts and parts[-1] != "\n\n":
                parts.append("\n\n")
        else:
            if parts and parts[-1] != "\n\n":
                parts.append(" ")
            parts.append(text)
    while parts and parts[-1] == "\n\n":
        parts.pop()
    return "".join(parts).strip()
