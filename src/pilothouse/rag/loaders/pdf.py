"""PDF through `pypdf`: one section per page with text (the page number kept for citations); the document
information's title when it has one."""

from __future__ import annotations

import io
import logging

from pilothouse.rag.chunking import Section
from pilothouse.rag.loaders.document import LoadedDocument, LoaderError

logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every slightly malformed file


def load_pdf(data: bytes, *, source: str) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoaderError(f"{source}: the PDF is encrypted")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section(text, page=number))
        info = reader.metadata
        title = str(info.title).strip() if info is not None and info.title else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, LoaderError):
            raise
        raise LoaderError(f"{source}: not a readable PDF: {exc}") from exc
    return LoadedDocument(source=source, sections=tuple(sections), title=title or None)
