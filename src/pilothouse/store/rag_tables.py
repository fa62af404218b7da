"""RAG tables (migration 0020_rag), declared on the shared `metadata` of `store/tables.py`.

- `rag_collections`: one per (project, name); the embedding model and dimensions are fixed at creation;
  `settings` holds chunking and the ingestion policies; `generation` goes up on every change of the contents,
  so anything derived from a collection (a cached RAG answer) can name the contents it was built from.
- `rag_documents`: one per (collection, source) with its current version, content hash, access list, metadata,
  source modification time and `indexed_at`; `status` is `active` or `quarantined`.
- `rag_document_versions`: the history of a document's versions (hash, chunks, when).
- `rag_chunks`: the record of every chunk (text, float32 vector bytes, index metadata); the indexes are derived
  from it and can be rebuilt.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from pilothouse.store.tables import metadata
from pilothouse.store.types import JSONType

rag_collections = Table(
    "rag_collections",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("embedding_model", String(200), nullable=False),
    Column("dimensions", Integer, nullable=False),
    Column("index_kind", String(10), nullable=False),
    Column("index_uri", String(1000), nullable=True),
    Column("settings", JSONType, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_rag_collections_project_name"),
)

rag_documents = Table(
    "rag_documents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("collection_id", String(40), ForeignKey("rag_collections.id"), nullable=False),
    Column("source", String(1000), nullable=False),
    Column("title", String(500), nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("acl", JSONType, nullable=False),
    Column("meta", JSONType, nullable=False),
    Column("flags", JSONType, nullable=False),
    Column("status", String(12), nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("source_mtime", Float, nullable=True),
    Column("indexed_at", Float, nullable=False),
    UniqueConstraint("collection_id", "source", name="uq_rag_documents_collection_source"),
    Index("ix_rag_documents_collection_hash", "collection_id", "content_hash"),
)

rag_document_versions = Table(
    "rag_document_versions",
    metadata,
    Column("document_id", String(40), ForeignKey("rag_documents.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("source_mtime", Float, nullable=True),
    Column("indexed_at", Float, nullable=False),
)

rag_chunks = Table(
    "rag_chunks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("collection_id", String(40), ForeignKey("rag_collections.id"), nullable=False),
    Column("document_id", String(40), ForeignKey("rag_documents.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("meta", JSONType, nullable=False),
    Index("ix_rag_chunks_collection_id", "collection_id"),
    Index("ix_rag_chunks_document_id", "document_id", "position"),
    Index("ix_rag_chunks_collection_text_hash", "collection_id", "text_hash"),
)
