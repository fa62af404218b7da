"""Freshness: which documents of a collection are stale, and bringing a collection up to date (`sync`).

A document is stale when
- `missing`: its source file is gone (or the folder it was ingested from);
- `changed`: its source file's contents differ from what was indexed (a new modification time alone is not
  enough: the file is read and hashed, so a `touch` is not reported);
- `ttl`: it was indexed (or last checked) longer ago than the collection's `ttl_days`.
Records sent through the API have no source to check; only the TTL applies to them.

`sync` walks every folder the collection was ingested from again (new, changed and deleted files), rechecks the
documents whose TTL passed, and reports what changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.ingest import Ingestor, IngestReport, acl_of, indexed_hash
from pilothouse.rag.loaders import LoaderError, load_path
from pilothouse.rag.settings import CollectionSettings
from pilothouse.rag.types import CollectionInfo
from pilothouse.store import rag as repo
from pilothouse.store.engine import Store

Reason = Literal["missing", "changed", "ttl"]
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class StaleDocument:
    document: repo.DocumentRow
    reason: Reason
    age_s: float
    """Seconds since the document was indexed or last checked."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.document.source,
            "reason": self.reason,
            "version": self.document.version,
            "indexed_at": self.document.indexed_at,
            "age_s": round(self.age_s, 1),
        }


def _file_of(document: repo.DocumentRow) -> Path | None:
    if document.meta.get("_kind") != "file":
        return None
    return Path(document.source.split("#", 1)[0])


def stale_documents(
    store: Store, collection: CollectionInfo, *, now: float | None = None, check_files: bool = True
) -> list[StaleDocument]:
    """The collection's stale documents, by source (see the module docstring). `check_files=False`: only the
    TTL (a server whose files are on the clients' machines)."""
    with store.connect() as conn:
        documents = repo.list_documents(conn, collection.id)
    return stale_among(documents, CollectionSettings.from_json(collection.settings), now=now, check_files=check_files)


def stale_among(
    documents: Sequence[repo.DocumentRow],
    settings: CollectionSettings,
    *,
    now: float | None = None,
    check_files: bool = True,
) -> list[StaleDocument]:
    """Which of these documents are stale, checking their files where they are (the CLI runs it on the machine
    holding the folders, with the documents the server listed)."""
    at = time.time() if now is None else now
    current: dict[str, str] = {}  # source -> indexed hash now, for files whose mtime moved
    out: list[StaleDocument] = []
    for document in documents:
        age = max(0.0, at - document.indexed_at)
        path = _file_of(document) if check_files else None
        reason: Reason | None = None
        if path is not None:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                reason = "missing"
            else:
                if mtime != document.source_mtime and _hash_now(path, document, current, settings) != "same":
                    reason = "changed"
        if reason is None and settings.ttl_days is not None and age > settings.ttl_days * DAY:
            reason = "ttl"
        if reason is not None:
            out.append(StaleDocument(document, reason, age))
    return out


def _hash_now(path: Path, document: repo.DocumentRow, cache: dict[str, str], settings: CollectionSettings) -> str:
    """`same` when the file still holds what was indexed for `document`, else `changed`."""
    if document.source not in cache:
        try:
            loaded = load_path(path, source=str(path))
        except LoaderError:
            return "changed"
        for item in loaded:
            cache[item.source] = indexed_hash(item, acl_of(item, document.acl), settings)
    if document.source not in cache:
        return "changed"  # the record is gone from its JSONL file
    return "same" if cache[document.source] == document.content_hash else "changed"


def sync(store: Store, collection: CollectionInfo, index: RagIndex, ingestor: Ingestor | None = None) -> IngestReport:
    """Bring the collection up to date with its folders (see the module docstring)."""
    worker = ingestor or Ingestor(store, collection, index)
    stale = stale_documents(store, collection)
    recheck = {s.document.source for s in stale if s.reason == "ttl"}
    total = IngestReport()
    started = time.monotonic()
    for source in worker.settings.sources:
        root = Path(source.path)
        if root.is_dir():
            part = worker.ingest_folder(root, acl=source.acl, recheck=recheck)
        else:  # the whole folder is gone: so are its documents
            with store.connect() as conn:
                gone = [d.source for d in repo.list_documents(conn, collection.id, prefix=str(root) + os.sep)]
            part = worker.remove_sources(gone)
            part.errors.append((str(root), "the folder no longer exists; its documents were removed"))
        _merge(total, part)
    total.seconds = time.monotonic() - started
    return total


def _merge(total: IngestReport, part: IngestReport) -> None:
    total.added += part.added
    total.updated += part.updated
    total.unchanged += part.unchanged
    total.removed += part.removed
    total.quarantined += part.quarantined
    total.flagged += part.flagged
    total.errors += part.errors
    total.chunks_written += part.chunks_written
    total.chunks_embedded += part.chunks_embedded
    total.chunks_reused += part.chunks_reused
