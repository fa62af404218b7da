"""RAG collections, documents (with versions) and chunks (tables in `store/rag_tables.py`).

Plain reads and writes on a Connection. The SQL store is the record of every chunk: its text, its vector
(float32 bytes of the collection's dimensions) and the metadata written to the indexes (`IndexedChunk.metadata`);
the indexes derive from these rows and `iter_chunks` rebuilds them. A document is one per (collection, source);
writing new contents makes a new version and replaces its chunks. Every change of a collection's contents raises
its `generation`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, func, insert, select, update

from pilothouse.rag.types import AccessList, CollectionInfo, IndexedChunk
from pilothouse.store.ids import new_id
from pilothouse.store.rag_tables import rag_chunks, rag_collections, rag_document_versions, rag_documents
from pilothouse.vectors.protocol import FloatArray

__all__ = [
    "ChunkRecord",
    "CollectionSummary",
    "DocumentRow",
    "bump_generation",
    "collection_generation",
    "count_chunks",
    "create_collection",
    "delete_collection",
    "delete_document",
    "document_versions",
    "get_chunks",
    "get_collection",
    "get_collection_by_id",
    "get_document",
    "iter_chunks",
    "list_collections",
    "list_documents",
    "set_embedding_model",
    "touch_document",
    "update_settings",
    "update_vectors",
    "vectors_by_text_hash",
    "write_document",
]


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """A collection with its counts, for listings."""

    info: CollectionInfo
    generation: int
    documents: int
    quarantined: int
    chunks: int
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.info.name,
            "id": self.info.id,
            "embedding_model": self.info.embedding_model,
            "dimensions": self.info.dimensions,
            "index_kind": self.info.index_kind,
            "index_uri": self.info.index_uri,
            "settings": self.info.settings,
            "generation": self.generation,
            "documents": self.documents,
            "quarantined": self.quarantined,
            "chunks": self.chunks,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: str
    collection_id: str
    source: str
    title: str | None
    content_hash: str
    version: int
    acl: AccessList
    meta: dict[str, Any]
    flags: list[str]
    status: str  # active or quarantined
    chunk_count: int
    source_mtime: float | None
    indexed_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "content_hash": self.content_hash,
            "version": self.version,
            "acl": self.acl.to_json(),
            "metadata": self.meta,
            "flags": self.flags,
            "status": self.status,
            "chunks": self.chunk_count,
            "source_mtime": self.source_mtime,
            "indexed_at": self.indexed_at,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], collection_id: str = "") -> DocumentRow:
        """A document from its `to_dict()` (the API's JSON)."""
        acl = raw.get("acl") or {}
        return cls(
            id=raw["id"],
            collection_id=collection_id,
            source=raw["source"],
            title=raw.get("title"),
            content_hash=raw["content_hash"],
            version=int(raw["version"]),
            acl=AccessList.of(acl.get("groups", ()), acl.get("users", ())),
            meta=dict(raw.get("metadata") or {}),
            flags=list(raw.get("flags") or []),
            status=raw["status"],
            chunk_count=int(raw.get("chunks", 0)),
            source_mtime=raw.get("source_mtime"),
            indexed_at=float(raw["indexed_at"]),
        )


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A chunk as stored: its text, the hash of the text (for reusing vectors), vector and index metadata."""

    id: str
    document_id: str
    position: int
    text: str
    text_hash: str
    vector: FloatArray
    meta: dict[str, Any]

    def indexed(self) -> IndexedChunk:
        return IndexedChunk(id=self.id, text=self.text, vector=self.vector, metadata=self.meta)


def _info(row: Any) -> CollectionInfo:
    return CollectionInfo(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        embedding_model=row.embedding_model,
        dimensions=int(row.dimensions),
        index_kind=row.index_kind,
        index_uri=row.index_uri,
        settings=dict(row.settings),
    )


def _document(row: Any) -> DocumentRow:
    acl = row.acl or {}
    return DocumentRow(
        id=row.id,
        collection_id=row.collection_id,
        source=row.source,
        title=row.title,
        content_hash=row.content_hash,
        version=int(row.version),
        acl=AccessList.of(acl.get("groups", ()), acl.get("users", ())),
        meta=dict(row.meta),
        flags=list(row.flags),
        status=row.status,
        chunk_count=int(row.chunk_count),
        source_mtime=row.source_mtime,
        indexed_at=row.indexed_at,
    )


def _vector(raw: bytes, dimensions: int | None = None) -> FloatArray:
    out = np.frombuffer(raw, dtype=np.float32)
    if dimensions is not None and out.shape[0] != dimensions:
        raise ValueError(f"stored vector has {out.shape[0]} dimensions, the collection {dimensions}")
    return out


def _chunk(row: Any) -> ChunkRecord:
    return ChunkRecord(
        id=row.id,
        document_id=row.document_id,
        position=int(row.position),
        text=row.text,
        text_hash=row.text_hash,
        vector=_vector(row.vector),
        meta=dict(row.meta),
    )


# -- collections ------------------------------------------------------------------------------------------


def create_collection(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    embedding_model: str,
    dimensions: int,
    index_kind: str = "auto",
    index_uri: str | None = None,
    settings: dict[str, Any] | None = None,
    actor: str | None = None,
) -> CollectionInfo:
    now = time.time()
    collection_id = new_id("rcol")
    conn.execute(
        insert(rag_collections).values(
            id=collection_id,
            project_id=project_id,
            name=name,
            embedding_model=embedding_model,
            dimensions=dimensions,
            index_kind=index_kind,
            index_uri=index_uri,
            settings=settings or {},
            generation=0,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
    )
    row = conn.execute(select(rag_collections).where(rag_collections.c.id == collection_id)).one()
    return _info(row)


def get_collection(conn: Connection, project_id: str, name: str) -> CollectionInfo | None:
    row = conn.execute(
        select(rag_collections).where(rag_collections.c.project_id == project_id, rag_collections.c.name == name)
    ).first()
    return None if row is None else _info(row)


def get_collection_by_id(conn: Connection, collection_id: str) -> CollectionInfo | None:
    row = conn.execute(select(rag_collections).where(rag_collections.c.id == collection_id)).first()
    return None if row is None else _info(row)


def list_collections(conn: Connection, project_id: str) -> list[CollectionSummary]:
    rows = list(
        conn.execute(
            select(rag_collections).where(rag_collections.c.project_id == project_id).order_by(rag_collections.c.name)
        )
    )
    if not rows:
        return []
    ids = [r.id for r in rows]
    docs: dict[str, dict[str, int]] = {i: {} for i in ids}
    for cid, status, count in conn.execute(
        select(rag_documents.c.collection_id, rag_documents.c.status, func.count())
        .where(rag_documents.c.collection_id.in_(ids))
        .group_by(rag_documents.c.collection_id, rag_documents.c.status)
    ):
        docs[cid][status] = int(count)
    chunks: dict[str, int] = dict.fromkeys(ids, 0)
    for cid, count in conn.execute(
        select(rag_chunks.c.collection_id, func.count())
        .where(rag_chunks.c.collection_id.in_(ids))
        .group_by(rag_chunks.c.collection_id)
    ):
        chunks[cid] = int(count)
    return [
        CollectionSummary(
            info=_info(r),
            generation=int(r.generation),
            documents=sum(docs[r.id].values()),
            quarantined=docs[r.id].get("quarantined", 0),
            chunks=chunks[r.id],
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def collection_generation(conn: Connection, collection_id: str) -> int:
    """How many times the collection's contents changed: part of anything derived from them (cache keys)."""
    value = conn.execute(select(rag_collections.c.generation).where(rag_collections.c.id == collection_id)).scalar()
    return int(value or 0)


def bump_generation(conn: Connection, collection_id: str) -> None:
    conn.execute(
        update(rag_collections)
        .where(rag_collections.c.id == collection_id)
        .values(generation=rag_collections.c.generation + 1, updated_at=time.time())
    )


def set_embedding_model(conn: Connection, collection_id: str, *, embedding_model: str, dimensions: int) -> None:
    """Record a new embedding model (after every chunk was re-embedded with it, see `update_vectors`)."""
    conn.execute(
        update(rag_collections)
        .where(rag_collections.c.id == collection_id)
        .values(embedding_model=embedding_model, dimensions=dimensions)
    )
    bump_generation(conn, collection_id)


def update_settings(conn: Connection, collection_id: str, settings: dict[str, Any]) -> None:
    conn.execute(
        update(rag_collections)
        .where(rag_collections.c.id == collection_id)
        .values(settings=settings, updated_at=time.time())
    )


def delete_collection(conn: Connection, collection_id: str) -> int:
    """Delete a collection with its documents and chunks; returns how many chunks went."""
    doc_ids = select(rag_documents.c.id).where(rag_documents.c.collection_id == collection_id)
    removed = conn.execute(delete(rag_chunks).where(rag_chunks.c.collection_id == collection_id)).rowcount
    conn.execute(delete(rag_document_versions).where(rag_document_versions.c.document_id.in_(doc_ids)))
    conn.execute(delete(rag_documents).where(rag_documents.c.collection_id == collection_id))
    conn.execute(delete(rag_collections).where(rag_collections.c.id == collection_id))
    return int(removed or 0)


# -- documents --------------------------------------------------------------------------------------------


def get_document(conn: Connection, collection_id: str, source: str) -> DocumentRow | None:
    row = conn.execute(
        select(rag_documents).where(rag_documents.c.collection_id == collection_id, rag_documents.c.source == source)
    ).first()
    return None if row is None else _document(row)


def list_documents(
    conn: Connection, collection_id: str, *, status: str | None = None, prefix: str | None = None
) -> list[DocumentRow]:
    """Documents of a collection by source (`prefix`: only sources starting with it)."""
    query = select(rag_documents).where(rag_documents.c.collection_id == collection_id)
    if status is not None:
        query = query.where(rag_documents.c.status == status)
    if prefix:
        query = query.where(rag_documents.c.source.startswith(prefix, autoescape=True))
    return [_document(r) for r in conn.execute(query.order_by(rag_documents.c.source))]


def document_versions(conn: Connection, document_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(rag_document_versions)
        .where(rag_document_versions.c.document_id == document_id)
        .order_by(rag_document_versions.c.version)
    )
    return [
        {
            "version": r.version,
            "content_hash": r.content_hash,
            "chunks": r.chunk_count,
            "source_mtime": r.source_mtime,
            "indexed_at": r.indexed_at,
        }
        for r in rows
    ]


def _chunk_ids(conn: Connection, document_id: str) -> list[str]:
    return list(conn.execute(select(rag_chunks.c.id).where(rag_chunks.c.document_id == document_id)).scalars())


def write_document(
    conn: Connection,
    *,
    collection_id: str,
    source: str,
    title: str | None,
    content_hash: str,
    acl: AccessList,
    meta: dict[str, Any],
    flags: Sequence[str],
    status: str,
    source_mtime: float | None,
    chunks: Sequence[tuple[str, str, FloatArray, dict[str, Any]]],
    document_id: str | None = None,
    indexed_at: float | None = None,
) -> tuple[DocumentRow, list[str], list[ChunkRecord]]:
    """Write a document's new version with its chunks (text, text hash, vector, index metadata without the
    reserved document keys, which are added here). Returns the document, the ids of the chunks its previous
    version held (to remove from the indexes) and the new chunk records."""
    now = indexed_at if indexed_at is not None else time.time()
    existing = get_document(conn, collection_id, source)
    doc_id = existing.id if existing else (document_id or new_id("rdoc"))
    version = existing.version + 1 if existing else 1
    old_ids = _chunk_ids(conn, doc_id) if existing else []
    values = {
        "title": title,
        "content_hash": content_hash,
        "version": version,
        "acl": acl.to_json(),
        "meta": meta,
        "flags": sorted(set(flags)),
        "status": status,
        "chunk_count": len(chunks),
        "source_mtime": source_mtime,
        "indexed_at": now,
    }
    if existing:
        conn.execute(delete(rag_chunks).where(rag_chunks.c.document_id == doc_id))
        conn.execute(update(rag_documents).where(rag_documents.c.id == doc_id).values(**values))
    else:
        conn.execute(insert(rag_documents).values(id=doc_id, collection_id=collection_id, source=source, **values))
    conn.execute(
        insert(rag_document_versions).values(
            document_id=doc_id,
            version=version,
            content_hash=content_hash,
            chunk_count=len(chunks),
            source_mtime=source_mtime,
            indexed_at=now,
        )
    )
    records: list[ChunkRecord] = []
    for position, (text, text_hash, vector, chunk_meta) in enumerate(chunks):
        records.append(
            ChunkRecord(
                id=f"{doc_id}-{version}-{position}",
                document_id=doc_id,
                position=position,
                text=text,
                text_hash=text_hash,
                vector=np.asarray(vector, dtype=np.float32),
                meta={**chunk_meta, "_document": doc_id, "_version": version, "_position": position},
            )
        )
    if records:
        conn.execute(
            insert(rag_chunks),
            [
                {
                    "id": r.id,
                    "collection_id": collection_id,
                    "document_id": doc_id,
                    "position": r.position,
                    "text": r.text,
                    "text_hash": r.text_hash,
                    "vector": r.vector.tobytes(),
                    "meta": r.meta,
                }
                for r in records
            ],
        )
    bump_generation(conn, collection_id)
    row = conn.execute(select(rag_documents).where(rag_documents.c.id == doc_id)).one()
    return _document(row), old_ids, records


def touch_document(conn: Connection, document_id: str, *, source_mtime: float | None) -> None:
    """The source was seen again with the same contents: record its modification time and when it was checked."""
    conn.execute(
        update(rag_documents)
        .where(rag_documents.c.id == document_id)
        .values(source_mtime=source_mtime, indexed_at=time.time())
    )


def delete_document(conn: Connection, document_id: str) -> list[str]:
    """Delete a document, its versions and chunks; returns the chunk ids (to remove from the indexes)."""
    collection_id = conn.execute(
        select(rag_documents.c.collection_id).where(rag_documents.c.id == document_id)
    ).scalar()
    ids = _chunk_ids(conn, document_id)
    conn.execute(delete(rag_chunks).where(rag_chunks.c.document_id == document_id))
    conn.execute(delete(rag_document_versions).where(rag_document_versions.c.document_id == document_id))
    conn.execute(delete(rag_documents).where(rag_documents.c.id == document_id))
    if collection_id is not None:
        bump_generation(conn, collection_id)
    return ids


# -- chunks -----------------------------------------------------------------------------------------------


def get_chunks(conn: Connection, collection_id: str, ids: Iterable[str]) -> list[ChunkRecord]:
    """The chunks of a collection with these ids, in the order asked (unknown ids are left out)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found: dict[str, ChunkRecord] = {}
    for start in range(0, len(wanted), 500):
        for row in conn.execute(
            select(rag_chunks).where(
                rag_chunks.c.collection_id == collection_id, rag_chunks.c.id.in_(wanted[start : start + 500])
            )
        ):
            found[row.id] = _chunk(row)
    return [found[i] for i in wanted if i in found]


def _indexable(query: Any, collection_id: str, indexable: bool) -> Any:
    query = query.where(rag_chunks.c.collection_id == collection_id)
    if indexable:
        active = select(rag_documents.c.id).where(
            rag_documents.c.collection_id == collection_id, rag_documents.c.status == "active"
        )
        query = query.where(rag_chunks.c.document_id.in_(active))
    return query


def iter_chunks(
    conn: Connection, collection_id: str, *, indexable: bool = False, batch: int = 1000
) -> Iterator[ChunkRecord]:
    """Every chunk of a collection in id order, read in batches (for rebuilding an index or re-embedding);
    `indexable`: only those of active documents (what the indexes hold; quarantined documents are left out)."""
    last = ""
    while True:
        rows = list(
            conn.execute(
                _indexable(select(rag_chunks), collection_id, indexable)
                .where(rag_chunks.c.id > last)
                .order_by(rag_chunks.c.id)
                .limit(batch)
            )
        )
        if not rows:
            return
        for row in rows:
            yield _chunk(row)
        last = rows[-1].id


def count_chunks(conn: Connection, collection_id: str, *, indexable: bool = False) -> int:
    value = conn.execute(_indexable(select(func.count()).select_from(rag_chunks), collection_id, indexable)).scalar()
    return int(value or 0)


def vectors_by_text_hash(conn: Connection, collection_id: str, hashes: Iterable[str]) -> dict[str, FloatArray]:
    """Vectors already computed for chunk texts with these hashes (identical text: the same vector)."""
    wanted = list(set(hashes))
    out: dict[str, FloatArray] = {}
    for start in range(0, len(wanted), 500):
        for text_hash, raw in conn.execute(
            select(rag_chunks.c.text_hash, rag_chunks.c.vector).where(
                rag_chunks.c.collection_id == collection_id, rag_chunks.c.text_hash.in_(wanted[start : start + 500])
            )
        ):
            out.setdefault(text_hash, _vector(raw))
    return out


def update_vectors(conn: Connection, vectors: dict[str, FloatArray]) -> None:
    """Replace the vectors of these chunk ids (re-embedding)."""
    for chunk_id, vector in vectors.items():
        conn.execute(
            update(rag_chunks)
            .where(rag_chunks.c.id == chunk_id)
            .values(vector=np.asarray(vector, dtype=np.float32).tobytes())
        )
