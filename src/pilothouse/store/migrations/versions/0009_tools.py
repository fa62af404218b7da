"""`tools` and `tool_grants`: the tool registry and the tool allow-lists (docs/tools.md).

Revision ID: 0009_tools
Revises: 0008_policies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0009_tools"
down_revision = "0008_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tools",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("risk", sa.String(10), nullable=False),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tools"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_tools_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_tools_project_id_name"),
    )
    op.create_table(
        "tool_grants",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("rules", JSONType, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tool_grants"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_tool_grants_project_id_projects"),
        sa.UniqueConstraint(
            "project_id", "tool", "kind", "subject", name="uq_tool_grants_project_id_tool_kind_subject"
        ),
    )


def downgrade() -> None:
    op.drop_table("tool_grants")
    op.drop_table("tools")
