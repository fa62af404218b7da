"""datasets: versioned evaluation datasets (docs/datasets.md).

- `datasets`: one per (project, name).
- `dataset_versions`: immutable numbered versions with the hash of their item list, the item count and the count
  per split.
- `dataset_items`: each distinct item once per dataset, by content hash.
- `dataset_version_items`: the ordered item list of each version.

Revision ID: 0017_datasets
Revises: 0015_trace_query
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0017_datasets"
down_revision = "0015_trace_query"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_datasets_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("dataset_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("splits", JSONType, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("author", sa.String(40), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name="fk_dataset_versions_dataset_id_datasets"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("dataset_id", sa.String(40), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("body", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_items"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name="fk_dataset_items_dataset_id_datasets"),
        sa.UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_items_dataset_hash"),
    )
    op.create_table(
        "dataset_version_items",
        sa.Column("version_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("item_id", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "position", name="pk_dataset_version_items"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["dataset_versions.id"], name="fk_dataset_version_items_version_id_dataset_versions"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["dataset_items.id"], name="fk_dataset_version_items_item_id_dataset_items"
        ),
    )


def downgrade() -> None:
    op.drop_table("dataset_version_items")
    op.drop_table("dataset_items")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
