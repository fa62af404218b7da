"""JSONL records: one JSON object per line, one document each.

Fields: `text` (required), `id` (the record's key within the file; default: its line number), `title`,
`metadata` (an object of scalars or lists of strings), `groups` and `users` (its access list). The same shape
is accepted by the Python API and `POST /api/rag/{collection}/records`.
"""

from __future__ import annotations

from typing import Any

import orjson

from pilothouse.rag.loaders.document import LoadedDocument, LoaderError
from pilothouse.rag.loaders.markdown import load_markdown


def check_metadata(metadata: dict[str, Any], *, source: str) -> None:
    """LoaderError unless every key is a user key (not `_`-prefixed, which the index reserves) holding a string,
    number, boolean or list of strings (what filters can match)."""
    for key, value in metadata.items():
        if not key or key.startswith("_") or len(key) > 100:
            raise LoaderError(
                f"{source}: metadata key {key!r} is reserved or invalid (1-100 characters, not `_`-first)"
            )
        ok_list = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (ok_list or isinstance(value, str | int | float | bool)):
            raise LoaderError(f"{source}: metadata {key!r} must be a string, number, boolean or list of strings")


def record_document(record: Any, *, source: str) -> LoadedDocument:
    """One record (a mapping) as a document; LoaderError naming `source` when a field is wrong."""
    if not isinstance(record, dict):
        raise LoaderError(f"{source}: a record must be a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoaderError(f"{source}: `text` must be a non-empty string")
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise LoaderError(f"{source}: `title` must be a string")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise LoaderError(f"{source}: `metadata` must be an object")
    check_metadata(metadata, source=source)
    access: dict[str, tuple[str, ...]] = {}
    for field in ("groups", "users"):
        values = record.get(field) or []
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise LoaderError(f"{source}: `{field}` must be a list of non-empty strings")
        access[field] = tuple(values)
    # Markdown structure in a record's text (headers) is kept, plain text reads as one section.
    loaded = load_markdown(text, source=source)
    return LoadedDocument(
        source=source,
        sections=loaded.sections,
        title=title or loaded.title,
        metadata=dict(metadata),
        groups=access["groups"],
        users=access["users"],
    )


def load_jsonl(text: str, *, source: str) -> list[LoadedDocument]:
    documents: list[LoadedDocument] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise LoaderError(f"{source}:{number}: not JSON: {exc}") from exc
        key = record.get("id", number) if isinstance(record, dict) else number
        name = f"{source}#{key}"
        if name in seen:
            raise LoaderError(f"{source}:{number}: duplicate record id {key!r}")
        seen.add(name)
        documents.append(record_document(record, source=name))
    return documents
