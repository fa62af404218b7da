"""Planning a folder ingest: which files are new or changed (loaded, to be indexed), which are unchanged (by
modification time, not even read) and which documents' files are gone.

Used where the files are: in-process by `Ingestor.ingest_folder`, and by `pilothouse rag ingest|sync`, which
plans on the machine holding the folder and sends only the loaded documents and the removals to the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pilothouse.rag.loaders import SUFFIXES, LoadedDocument, LoaderError, load_path


class KnownDocument(Protocol):
    """What the plan needs of a stored document (a `store.rag.DocumentRow`, or its JSON on the client)."""

    @property
    def source(self) -> str: ...

    @property
    def source_mtime(self) -> float | None: ...


@dataclass(slots=True)
class FolderPlan:
    root: Path
    load: list[tuple[LoadedDocument, float]] = field(default_factory=list)
    """New or changed documents with their files' modification times (the content hash decides, later,
    whether a file whose time moved really changed)."""
    unchanged: int = 0
    gone: list[str] = field(default_factory=list)
    """Sources whose files (or JSONL records) are no longer there."""
    errors: list[tuple[str, str]] = field(default_factory=list)


def walk(root: Path) -> list[Path]:
    """Supported files under `root`, sorted; hidden files and folders are skipped."""
    out: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(
            Path(folder) / f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in SUFFIXES
        )
    return out


def folder_root(folder: Path) -> Path:
    root = folder.expanduser().resolve()
    if not root.is_dir():
        raise LoaderError(f"{folder}: not a folder")
    return root


def plan_folder(
    root: Path,
    known: Iterable[KnownDocument],
    *,
    reread: bool = False,
    recheck: Iterable[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> FolderPlan:
    """The plan for `root` (absolute) against the documents stored from it. `reread`: read every file even if its
    time is unchanged (the access list changed); `recheck`: sources to read again anyway (their TTL passed)."""
    plan = FolderPlan(root)
    by_file: dict[str, list[KnownDocument]] = {}
    for doc in known:
        by_file.setdefault(doc.source.split("#", 1)[0], []).append(doc)
    again = set(recheck)
    seen: set[str] = set()
    files = walk(root)
    for number, path in enumerate(files, start=1):
        if progress is not None:
            progress(number, len(files))
        name = str(path)
        stored: Sequence[KnownDocument] = by_file.get(name, [])
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            plan.errors.append((name, f"cannot read: {exc.strerror}"))
            seen.update(d.source for d in stored)
            continue
        if stored and not reread and all(d.source_mtime == mtime and d.source not in again for d in stored):
            seen.update(d.source for d in stored)
            plan.unchanged += len(stored)
            continue
        try:
            documents = load_path(path, source=name)
        except LoaderError as exc:
            plan.errors.append((name, str(exc)))
            seen.update(d.source for d in stored)  # an unreadable file keeps its last good version
            continue
        for document in documents:
            seen.add(document.source)
            plan.load.append((document, mtime))
    plan.gone = sorted(source for docs in by_file.values() for d in docs if (source := d.source) not in seen)
    return plan
