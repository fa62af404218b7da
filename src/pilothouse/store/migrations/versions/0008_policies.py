"""`policies`, `policy_versions`: guard policies, versioned like prompts (docs/security.md#guard-policies).

Revision ID: 0008_policies
Revises: 0007_cache_thresholds
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0008_policies"
down_revision = "0007_cache_thresholds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_policies_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_policies_project_name"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("policy_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("body", JSONType, nullable=False),
        sa.Column("source_text", sa.Text, nullable=True),
        sa.Column("author", sa.String(40), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_versions"),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"], name="fk_policy_versions_policy_id_policies"),
        sa.UniqueConstraint("policy_id", "version", name="uq_policy_versions_policy_version"),
    )


def downgrade() -> None:
    op.drop_table("policy_versions")
    op.drop_table("policies")
