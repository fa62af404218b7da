"""The write-ahead ledger of calls in flight, and room for the `unknown_outcome` trace status.

Revision ID: 0005_inflight_calls
Revises: 0004_owner_role
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0005_inflight_calls"
down_revision = "0004_owner_role"
branch_labels = None
depends_on = None


def _trace_status(length: int) -> None:
    """traces.status as VARCHAR(length). SQLite ignores the length of a VARCHAR, so there only the declared
    type changes, in place (the schema-text edit SQLite documents for changes that leave the stored rows
    alone); rebuilding the table would trip the foreign keys of spans and scores."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.alter_column(
            "traces", "status", existing_type=sa.String(20 if length == 10 else 10), type_=sa.String(length)
        )
        return
    old, new = ("VARCHAR(10)", "VARCHAR(20)") if length == 20 else ("VARCHAR(20)", "VARCHAR(10)")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'traces'",
        (f"status {old} NOT NULL", f"status {new} NOT NULL"),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _trace_status(20)
    op.create_table(
        "inflight_calls",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("session_id", sa.String(200), nullable=True),
        sa.Column("prompt_name", sa.String(200), nullable=True),
        sa.Column("prompt_version", sa.Integer, nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("reservation", sa.String(32), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_pico", sa.BigInteger, nullable=False),
        sa.Column("counters", JSONType, nullable=False),
        sa.Column("process", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("actual_tokens", sa.BigInteger, nullable=True),
        sa.Column("actual_cost_pico", sa.BigInteger, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name="pk_inflight_calls"),
    )
    op.create_index("ix_inflight_calls_status", "inflight_calls", ["status"])


def downgrade() -> None:
    op.drop_index("ix_inflight_calls_status", table_name="inflight_calls")
    op.drop_table("inflight_calls")
    op.execute("UPDATE traces SET status = 'error' WHERE status = 'unknown_outcome'")
    _trace_status(10)
