"""Ingestion: folders of files and records from the Python API into a collection, incrementally.

What happens to each document (by its source: a file path, `<path>#<id>` for JSONL records, a record's id):
- unchanged contents (same content hash; for files, the same modification time skips even reading the file):
  nothing is re-embedded, only the modification time and check time are recorded;
- new or changed: PII redaction per policy, chunking, injection scanning, then embedding, where a chunk whose
  exact text the collection already holds (an unchanged part of a changed document, a duplicate paragraph, a
  copied file) reuses the stored vector instead of being embedded again; a new version is written and its
  chunks replace the old ones in the indexes;
- a file gone from an ingested folder (or a record deleted through the API): the document, its chunks and its
  versions leave the store and the indexes, so no retrieval returns them again, and with them no cached RAG
  answer (keyed on the packed chunks, gateway/stages/rag.py) can match; the collection's `generation` goes up
  for anything else derived from its contents.

Every write goes to the store first (one transaction per batch of documents), then to the index. Embedding runs
in the background on every core while the next batch is chunked and scanned and the previous one written
(rag/embed_pipeline.py).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pilothouse.rag.chunking import chunk_sections
from pilothouse.rag.embed_pipeline import PendingVectors, VectorPipeline, text_hash
from pilothouse.rag.embedders import TextEmbedder, embedder_for
from pilothouse.rag.folders import folder_root, plan_folder
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.loaders import LoadedDocument, LoaderError
from pilothouse.rag.loaders.jsonl import record_document
from pilothouse.rag.safety import INJECTION_FLAG, PII_FLAG, SafetyPolicy
from pilothouse.rag.settings import CollectionSettings, FolderSource
from pilothouse.rag.types import ACL_KEY, AccessList, CollectionInfo
from pilothouse.store import rag as repo
from pilothouse.store.engine import Store
from pilothouse.vectors.protocol import FloatArray

BATCH_DOCUMENTS = 32
"""Documents prepared and written together (one transaction per batch); their chunks embed in the background
while the next batch is prepared (rag/embed_pipeline.py)."""

Kind = Literal["file", "record"]
Stage = Literal["scan", "embed"]
Progress = Callable[[Stage, int, int], None]
"""Called with (stage, done, total): `scan` over sources, `embed` over chunks to embed."""


@dataclass(slots=True)
class IngestReport:
    """What an ingest or sync changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "quarantined": self.quarantined,
            "flagged": self.flagged,
            "errors": [{"source": s, "error": e} for s, e in self.errors],
            "chunks_written": self.chunks_written,
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "seconds": round(self.seconds, 3),
        }


ChunkRow = tuple[str, str, dict[str, Any]]
"""A chunk ready to store: text, text hash, index metadata (without the vector)."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """A new or changed document, loaded, with its access list and where it came from."""

    document: LoadedDocument
    acl: AccessList
    kind: Kind
    mtime: float | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A new or changed document chunked and scanned: its chunks, its flags, whether it is quarantined."""

    item: _Pending
    chunks: list[ChunkRow]
    flags: list[str]
    quarantined: bool


def acl_of(document: LoadedDocument, default: AccessList) -> AccessList:
    """A record's own access list, else the one it is ingested under."""
    return AccessList.of(document.groups, document.users) if document.groups or document.users else default


def indexed_hash(document: LoadedDocument, acl: AccessList, settings: CollectionSettings) -> str:
    """What a document's stored `content_hash` is: its contents, its access list and what shapes its chunks
    (chunking and safety policies), so a change of any of them re-indexes it."""
    digest = hashlib.sha256(document.content_hash().encode())
    shape = (settings.chunk_tokens, settings.overlap_tokens, settings.injection, settings.injection_threshold)
    digest.update(repr((acl.tokens(), shape, settings.pii)).encode())
    return digest.hexdigest()


class Ingestor:
    """Writes documents into one collection's store records and index (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        collection: CollectionInfo,
        index: RagIndex,
        *,
        embedder: TextEmbedder | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.collection = collection
        self.index = index
        self.embedder = embedder or embedder_for(collection.embedding_model)
        if self.embedder.dimensions != collection.dimensions:
            raise ValueError(
                f"embedder {self.embedder.model!r} gives {self.embedder.dimensions} dimensions, the collection "
                f"{collection.name!r} holds {collection.dimensions}"
            )
        self.settings = CollectionSettings.from_json(collection.settings)
        self.safety = SafetyPolicy.of(self.settings)
        self.progress = progress
        options = self.settings.chunking
        self.chunking = type(options)(min(options.max_tokens, self.embedder.max_tokens), options.overlap_tokens)

    # -- entry points ---------------------------------------------------------------------------------

    def ingest_folder(
        self, folder: Path, *, acl: AccessList | None = None, prune: bool = True, recheck: Iterable[str] = ()
    ) -> IngestReport:
        """Every supported file under `folder` (recursively; hidden files and folders skipped), under `acl`
        (default: the whole project; a JSONL record's own `groups`/`users` take precedence). `prune`: documents
        of files no longer there are removed. `recheck`: sources read again even if their modification time is
        unchanged (TTL passed). The folder and its access list are remembered for `sync`."""
        started = time.monotonic()
        access = acl or AccessList()
        root = folder_root(folder)
        with self.store.connect() as conn:
            known = repo.list_documents(conn, self.collection.id, prefix=str(root) + os.sep)
        previous = next((s.acl for s in self.settings.sources if s.path == str(root)), None)
        plan = plan_folder(
            root,
            known,
            reread=previous != access,
            recheck=recheck,
            progress=lambda done, total: self._progress("scan", done, total),
        )
        report = self.ingest_loaded(plan.load, acl=access, kind="file", folder=FolderSource(str(root), access))
        report.unchanged += plan.unchanged
        report.errors += plan.errors
        if prune:
            gone = set(plan.gone)
            self._remove([d for d in known if d.source in gone], report)
        report.seconds = time.monotonic() - started
        return report

    def ingest_loaded(
        self,
        items: Sequence[tuple[LoadedDocument, float | None]],
        *,
        acl: AccessList | None = None,
        kind: Kind = "record",
        folder: FolderSource | None = None,
    ) -> IngestReport:
        """Loaded documents with their sources' modification times (None for records), under `acl` unless a
        document has its own; `folder`: remember it (and its access list) for `sync`."""
        started = time.monotonic()
        access = acl or AccessList()
        report = IngestReport()
        pending = [self._pending(d, access, kind, mtime) for d, mtime in items]
        with self.store.connect() as conn:
            known = {
                d.source: d
                for p in pending
                if (d := repo.get_document(conn, self.collection.id, p.document.source)) is not None
            }
        self._write(pending, known, report)
        if folder is not None:
            self._remember(folder)
        report.seconds = time.monotonic() - started
        return report

    def ingest_records(self, records: Sequence[Any], *, acl: AccessList | None = None) -> IngestReport:
        """Records (mappings with `id`, `text` and optionally `title`, `metadata`, `groups`, `users`; see
        `rag/loaders/jsonl.py`), each a document under its `id`. Raises LoaderError for a bad record, naming it,
        before anything is written."""
        documents: list[LoadedDocument] = []
        seen: set[str] = set()
        for number, record in enumerate(records):
            key = record.get("id") if isinstance(record, dict) else None
            if not isinstance(key, str) or not key.strip() or len(key) > 1000:
                raise LoaderError(f"record {number}: `id` must be a non-empty string of at most 1000 characters")
            if key in seen:
                raise LoaderError(f"record {number}: duplicate id {key!r}")
            seen.add(key)
            documents.append(record_document(record, source=key))
        return self.ingest_documents(documents, acl=acl)

    def ingest_documents(self, documents: Iterable[LoadedDocument], *, acl: AccessList | None = None) -> IngestReport:
        """Loaded documents (from any loader, or built by the caller), each under its `source`."""
        return self.ingest_loaded([(d, None) for d in documents], acl=acl)

    def remove_sources(self, sources: Iterable[str]) -> IngestReport:
        """Delete these documents (by source) from the store and the index; unknown sources are ignored."""
        started = time.monotonic()
        report = IngestReport()
        with self.store.connect() as conn:
            found = [d for s in dict.fromkeys(sources) if (d := repo.get_document(conn, self.collection.id, s))]
        self._remove(found, report)
        report.seconds = time.monotonic() - started
        return report

    # -- steps ----------------------------------------------------------------------------------------

    def _progress(self, stage: Stage, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def _pending(self, document: LoadedDocument, default: AccessList, kind: Kind, mtime: float | None) -> _Pending:
        access = acl_of(document, default)
        return _Pending(document, access, kind, mtime, indexed_hash(document, access, self.settings))

    def _write(self, pending: list[_Pending], known: dict[str, repo.DocumentRow], report: IngestReport) -> None:
        changed: list[_Pending] = []
        touched: list[tuple[str, float | None]] = []
        for item in pending:
            stored = known.get(item.document.source)
            if stored is not None and stored.content_hash == item.content_hash:
                report.unchanged += 1
                touched.append((stored.id, item.mtime))
                continue
            changed.append(item)
        if touched:  # checked again, unchanged: record when, and a file's new modification time
            with self.store.begin() as conn:
                for document_id, mtime in touched:
                    repo.touch_document(conn, document_id, source_mtime=mtime)
        if not changed:
            return
        # Pipelined: while the pool embeds one batch, this thread chunks and scans the next and writes the
        # previous one (see rag/embed_pipeline.py).
        total = done = 0
        with VectorPipeline(self.embedder, self._stored_vectors) as pipeline:
            queued: deque[tuple[list[_Prepared], PendingVectors]] = deque()
            for start in range(0, len(changed), BATCH_DOCUMENTS):
                batch = [_Prepared(item, *self._prepare(item)) for item in changed[start : start + BATCH_DOCUMENTS]]
                texts = [chunk[0] for p in batch for chunk in p.chunks]
                vectors, reused = pipeline.submit(texts)
                report.chunks_reused += reused
                report.chunks_embedded += len(texts) - reused
                total += len(texts)
                queued.append((batch, vectors))
                self._progress("embed", done, total)
                while len(queued) > 1 or (queued and start + BATCH_DOCUMENTS >= len(changed)):
                    written, vectors_of = queued.popleft()
                    self._store(written, vectors_of.result(), known, report)
                    pipeline.written(vectors_of)
                    done += sum(len(p.chunks) for p in written)
                    self._progress("embed", done, total)
        self.index.close()

    def _store(
        self,
        batch: list[_Prepared],
        vectors: dict[str, FloatArray],
        known: dict[str, repo.DocumentRow],
        report: IngestReport,
    ) -> None:
        """Write one batch of prepared documents with their vectors: the store in one transaction, then the
        index."""
        old_ids: list[str] = []
        fresh: list[repo.ChunkRecord] = []
        with self.store.begin() as conn:
            for p in batch:
                item = p.item
                source = item.document.source
                meta = {**item.document.metadata, "_kind": item.kind}
                _, old, records = repo.write_document(
                    conn,
                    collection_id=self.collection.id,
                    source=source,
                    title=item.document.title,
                    content_hash=item.content_hash,
                    acl=item.acl,
                    meta=meta,
                    flags=p.flags,
                    status="quarantined" if p.quarantined else "active",
                    source_mtime=item.mtime,
                    chunks=[(text, h, vectors[h], chunk_meta) for text, h, chunk_meta in p.chunks],
                )
                old_ids.extend(old)
                if not p.quarantined:
                    fresh.extend(records)
                (report.updated if source in known else report.added).append(source)
                if p.quarantined:
                    report.quarantined.append(source)
                elif INJECTION_FLAG in p.flags:
                    report.flagged.append(source)
                report.chunks_written += len(records)
        if old_ids:
            self.index.remove(old_ids)
        if fresh:
            self.index.upsert([r.indexed() for r in fresh])

    def _prepare(self, item: _Pending) -> tuple[list[ChunkRow], list[str], bool]:
        """The chunks of a document (text, text hash, index metadata without vectors), its flags, and whether
        it is quarantined."""
        document = item.document
        sections, redacted = self.safety.redact(document.sections)
        chunks = chunk_sections(sections, self.embedder.count_tokens, self.chunking)
        injected = self.safety.injection_flags([c.text for c in chunks])
        now = time.time()
        base: dict[str, Any] = {
            k: (list(v) if isinstance(v, list | tuple) else v) for k, v in document.metadata.items()
        }
        out: list[ChunkRow] = []
        for chunk, bad in zip(chunks, injected, strict=True):
            flags = ([INJECTION_FLAG] if bad else []) + ([PII_FLAG] if redacted else [])
            headings = list(chunk.headings) + ([f"page {chunk.page}"] if chunk.page is not None else [])
            meta = {
                **base,
                ACL_KEY: item.acl.tokens(),
                "_source": document.source,
                "_title": document.title or "",
                "_headings": headings,
                "_indexed_at": now,
                "_modified_at": item.mtime if item.mtime is not None else now,
                "_flags": flags,
            }
            out.append((chunk.text, text_hash(chunk.text), meta))
        doc_flags = ([INJECTION_FLAG] if any(injected) else []) + ([PII_FLAG] if redacted else [])
        return out, doc_flags, any(injected) and self.safety.injection == "quarantine"

    def _stored_vectors(self, hashes: Iterable[str]) -> dict[str, FloatArray]:
        with self.store.connect() as conn:
            return repo.vectors_by_text_hash(conn, self.collection.id, hashes)

    def _remove(self, documents: list[repo.DocumentRow], report: IngestReport) -> None:
        if not documents:
            return
        ids: list[str] = []
        with self.store.begin() as conn:
            for doc in documents:
                ids.extend(repo.delete_document(conn, doc.id))
                report.removed.append(doc.source)
        self.index.remove(ids)
        self.index.close()

    def _remember(self, source: FolderSource) -> None:
        if source in self.settings.sources:
            return
        self.settings = self.settings.with_source(source)
        with self.store.begin() as conn:
            current = repo.get_collection_by_id(conn, self.collection.id)
            raw = dict(current.settings if current else self.collection.settings)
            raw["sources"] = [s.to_json() for s in self.settings.sources]
            repo.update_settings(conn, self.collection.id, raw)
