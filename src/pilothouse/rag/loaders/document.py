"""What every loader returns: a document's text cut into sections, its title and metadata."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pilothouse.rag.chunking import Section


class LoaderError(ValueError):
    """A file or record cannot be loaded; the message names it and why."""


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    source: str
    """Where it came from: a path, `<path>#<id>` for a JSONL record, or a record's own id."""
    sections: tuple[Section, ...]
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    """Access groups and users from the record itself (JSONL `acl`); a folder ingest's own access list applies
    when both are empty."""
    users: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)

    def content_hash(self) -> str:
        """SHA-256 of what is indexed: title, section headings and text, metadata and access list."""
        digest = hashlib.sha256()
        digest.update((self.title or "").encode())
        for section in self.sections:
            digest.update(b"\0s" + "\x1f".join(section.headings).encode() + b"\0" + section.text.encode())
        digest.update(b"\0m" + repr(sorted(self.metadata.items())).encode())
        digest.update(b"\0a" + repr((sorted(self.groups), sorted(self.users))).encode())
        return digest.hexdigest()
