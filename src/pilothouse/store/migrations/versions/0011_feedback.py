"""feedback: end users' thumbs up/down by trace, and the data type of scores (numeric, boolean, categorical).

`scores.data_type` is filled in for the rows already there: `categorical` where a score has a `string_value`,
`numeric` otherwise (boolean scores did not exist before this revision).

Revision ID: 0011_feedback
Revises: 0010_audit_checkpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_feedback"
down_revision = "0010_audit_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scores", sa.Column("data_type", sa.String(12), nullable=True))
    op.execute(
        "UPDATE scores SET data_type = CASE WHEN string_value IS NULL THEN 'numeric' ELSE 'categorical' END "
        "WHERE data_type IS NULL"
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("score_id", sa.String(40), nullable=False),
        sa.Column("thumbs", sa.String(4), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("author", sa.String(40), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_feedback_project_id_projects"),
        sa.ForeignKeyConstraint(["trace_id"], ["traces.id"], name="fk_feedback_trace_id_traces"),
    )
    op.create_index("ix_feedback_trace_id", "feedback", ["trace_id"])
    op.create_index("ix_feedback_project_created", "feedback", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_project_created", table_name="feedback")
    op.drop_index("ix_feedback_trace_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_column("scores", "data_type")  # SQLite 3.35+ drops a plain column in place (no table rebuild)
