"""0020_rag: RAG collections, documents with versions, and chunks (docs/rag.md).

- `rag_collections`: one per (project, name), with its fixed embedding model, index kind and settings.
- `rag_documents`: one per (collection, source): current version, content hash, access list, freshness fields.
- `rag_document_versions`: each version's hash, chunk count and when it was indexed.
- `rag_chunks`: every chunk's text, float32 vector bytes and index metadata (the indexes derive from these).

Revision ID: 0020_rag
Revises: 0019_annotations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0020_rag"
down_revision = "0019_annotations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rag_collections",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("dimensions", sa.Integer, nullable=False),
        sa.Column("index_kind", sa.String(10), nullable=False),
        sa.Column("index_uri", sa.String(1000), nullable=True),
        sa.Column("settings", JSONType, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rag_collections"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_rag_collections_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_rag_collections_project_name"),
    )
    op.create_table(
        "rag_documents",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("acl", JSONType, nullable=False),
        sa.Column("meta", JSONType, nullable=False),
        sa.Column("flags", JSONType, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("source_mtime", sa.Float, nullable=True),
        sa.Column("indexed_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rag_documents"),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["rag_collections.id"], name="fk_rag_documents_collection_id_rag_collections"
        ),
        sa.UniqueConstraint("collection_id", "source", name="uq_rag_documents_collection_source"),
    )
    op.create_index("ix_rag_documents_collection_hash", "rag_documents", ["collection_id", "content_hash"])
    op.create_table(
        "rag_document_versions",
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("source_mtime", sa.Float, nullable=True),
        sa.Column("indexed_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("document_id", "version", name="pk_rag_document_versions"),
        sa.ForeignKeyConstraint(
            ["document_id"], ["rag_documents.id"], name="fk_rag_document_versions_document_id_rag_documents"
        ),
    )
    op.create_table(
        "rag_chunks",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("meta", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rag_chunks"),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["rag_collections.id"], name="fk_rag_chunks_collection_id_rag_collections"
        ),
        sa.ForeignKeyConstraint(["document_id"], ["rag_documents.id"], name="fk_rag_chunks_document_id_rag_documents"),
    )
    op.create_index("ix_rag_chunks_collection_id", "rag_chunks", ["collection_id"])
    op.create_index("ix_rag_chunks_document_id", "rag_chunks", ["document_id", "position"])
    op.create_index("ix_rag_chunks_collection_text_hash", "rag_chunks", ["collection_id", "text_hash"])


def downgrade() -> None:
    op.drop_index("ix_rag_chunks_collection_text_hash", table_name="rag_chunks")
    op.drop_index("ix_rag_chunks_document_id", table_name="rag_chunks")
    op.drop_index("ix_rag_chunks_collection_id", table_name="rag_chunks")
    op.drop_table("rag_chunks")
    op.drop_table("rag_document_versions")
    op.drop_index("ix_rag_documents_collection_hash", table_name="rag_documents")
    op.drop_table("rag_documents")
    op.drop_table("rag_collections")
