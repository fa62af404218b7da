"""Budgets and rate limits (definitions; the spend lives in the LimitStore).

Revision ID: 0003_limits
Revises: 0002_prompts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import Money

revision = "0003_limits"
down_revision = "0002_prompts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("limit_usd", Money, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_budgets_project_id_projects"),
        sa.UniqueConstraint("project_id", "scope", "subject", "period", name="uq_budgets_project_scope_subject_period"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("max_tokens", sa.Integer, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rate_limits"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_rate_limits_project_id_projects"),
        sa.UniqueConstraint("project_id", "scope", "subject", name="uq_rate_limits_project_scope_subject"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("budgets")
