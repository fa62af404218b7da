"""`cache_thresholds`: a project's own similarity threshold for the semantic cache (none: the configured one).

Revision ID: 0007_cache_thresholds
Revises: 0006_trace_source
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_cache_thresholds"
down_revision = "0006_trace_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_thresholds",
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("project_id", name="pk_cache_thresholds"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_cache_thresholds_project_id_projects"),
    )


def downgrade() -> None:
    op.drop_table("cache_thresholds")
