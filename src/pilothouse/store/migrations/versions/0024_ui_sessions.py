"""dashboard sessions: `ui_sessions`, one row per signed-in browser (store/ui_tables.py).

Revision ID: 0024_ui_sessions
Revises: 0023_rollups_for_prompt_stats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_ui_sessions"
down_revision = "0023_rollups_for_prompt_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name="fk_ui_sessions_key_id_api_keys"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_ui_sessions"),
    )
    op.create_index("ix_ui_sessions_expires_at", "ui_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ui_sessions_expires_at", table_name="ui_sessions")
    op.drop_table("ui_sessions")
