"""`audit_checkpoints`: signed checkpoints of the audit chain head; `traces.content_purged_at`: when retention
deleted a trace's content (its numbers stay).

A checkpoint row holds the event count, the last event's sequence number and hash, the time, the id of the
Ed25519 key that signed those fields and the signature (audit/checkpoints.py). The same record is appended to a
file outside the database, so replacing both tables is still detected.

Revision ID: 0010_audit_checkpoints
Revises: 0009_tools
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_audit_checkpoints"
down_revision = "0009_tools"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("event_count", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )
    op.add_column("traces", sa.Column("content_purged_at", sa.Float, nullable=True))


def downgrade() -> None:
    op.drop_column("traces", "content_purged_at")
    op.drop_table("audit_checkpoints")
