"""Plain text: one section; the first non-empty line is the title when it is short."""

from __future__ import annotations

from pilothouse.rag.chunking import Section
from pilothouse.rag.loaders.document import LoadedDocument


def load_text(text: str, *, source: str) -> LoadedDocument:
    body = text.replace("\r\n", "\n").strip()
    first = body.split("\n", 1)[0].strip() if body else ""
    title = first if first and len(first) <= 120 else None
    return LoadedDocument(source=source, sections=(Section(body),) if body else (), title=title)
