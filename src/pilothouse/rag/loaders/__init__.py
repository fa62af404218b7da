"""Loaders: files to documents (text, Markdown, HTML, PDF, JSONL records), each a list of sections for chunking.

`load_path(path)` picks the loader by file suffix; a JSONL file gives one document per line (source
`<path>#<id>`), every other file one document. `SUFFIXES` lists what a folder ingest picks up.
"""

from __future__ import annotations

from pathlib import Path

from pilothouse.rag.loaders.document import LoadedDocument, LoaderError
from pilothouse.rag.loaders.html import load_html
from pilothouse.rag.loaders.jsonl import load_jsonl
from pilothouse.rag.loaders.markdown import load_markdown
from pilothouse.rag.loaders.pdf import load_pdf
from pilothouse.rag.loaders.text import load_text

__all__ = ["SUFFIXES", "LoadedDocument", "LoaderError", "load_path"]

SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}


def load_path(path: Path, *, source: str | None = None) -> list[LoadedDocument]:
    """The documents in one file; `source` names it (default: the path as given). LoaderError when it cannot
    be read or parsed, naming the file."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LoaderError(f"{path}: unsupported file type {path.suffix!r} (supported: {', '.join(sorted(SUFFIXES))})")
    name = source or str(path)
    try:
        if kind == "pdf":
            return [load_pdf(path.read_bytes(), source=name)]
        raw = path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if kind == "markdown":
        return [load_markdown(text, source=name)]
    if kind == "html":
        return [load_html(text, source=name)]
    if kind == "jsonl":
        return load_jsonl(text, source=name)
    return [load_text(text, source=name)]
