"""input drift: sampled input embeddings and each drift rule's sampling cursor (monitors/drift.py).

Revision ID: 0014_input_drift
Revises: 0013_trace_search
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0014_input_drift"
down_revision = "0013_trace_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "input_embeddings",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("prompt_name", sa.String(200), nullable=True),
        sa.Column("prompt_version", sa.Integer, nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("source", sa.String(20), nullable=True),
        sa.Column("tags", JSONType, nullable=True),
        sa.Column("embedder", sa.String(60), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("scale", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name="pk_input_embeddings"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_input_embeddings_project_id_projects"),
    )
    op.create_index("ix_input_embeddings_project_started", "input_embeddings", ["project_id", "started_at"])
    op.create_table(
        "input_drift_cursors",
        sa.Column("rule_id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("cursor_at", sa.Float, nullable=False),
        sa.Column("covered_from", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name="pk_input_drift_cursors"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_input_drift_cursors_project_id_projects"),
    )


def downgrade() -> None:
    op.drop_table("input_drift_cursors")
    op.drop_index("ix_input_embeddings_project_started", table_name="input_embeddings")
    op.drop_table("input_embeddings")
