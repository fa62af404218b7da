"""Prompts: versions, labels (with canary splits and rollback rules), test suites; prompt columns on traces.

Revision ID: 0002_prompts
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0002_prompts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("prompt_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("prompt_version", sa.Integer, nullable=True))
    op.create_index("ix_traces_project_prompt", "traces", ["project_id", "prompt_name", "prompt_version"])
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_prompts_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_prompts_project_name"),
    )
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("prompt_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("template", JSONType, nullable=False),
        sa.Column("source_text", sa.Text, nullable=True),
        sa.Column("source_format", sa.String(10), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("author", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_versions"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name="fk_prompt_versions_prompt_id_prompts"),
        sa.UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_prompt_version"),
    )
    op.create_index("ix_prompt_versions_prompt_hash", "prompt_versions", ["prompt_id", "content_hash"])
    op.create_table(
        "prompt_labels",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("prompt_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("splits", JSONType, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("rollback_rule", JSONType, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_labels"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name="fk_prompt_labels_prompt_id_prompts"),
        sa.UniqueConstraint("prompt_id", "name", name="uq_prompt_labels_prompt_name"),
    )
    op.create_table(
        "prompt_test_suites",
        sa.Column("prompt_id", sa.String(40), nullable=False),
        sa.Column("cases", JSONType, nullable=False),
        sa.Column("source_text", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("prompt_id", name="pk_prompt_test_suites"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name="fk_prompt_test_suites_prompt_id_prompts"),
    )


def downgrade() -> None:
    for table in ("prompt_test_suites", "prompt_labels", "prompt_versions", "prompts"):
        op.drop_table(table)
    op.drop_index("ix_traces_project_prompt", "traces")
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("prompt_version")
        batch.drop_column("prompt_name")
