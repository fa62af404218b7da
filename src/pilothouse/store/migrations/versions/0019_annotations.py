"""annotations: queues of traces and experiment results for people to score (docs/evaluation.md).

- `annotation_queues`: one per (project, name), with the score configuration its annotators fill in.
- `annotation_tasks`: one per (queue, target), `target` being `trace:<id>` or `result:<experiment>/<variant>/<item>`;
  open, done (with the value) or skipped.

Revision ID: 0019_annotations
Revises: 0018_experiments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0019_annotations"
down_revision = "0018_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotation_queues",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("score", JSONType, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_queues"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_annotation_queues_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_annotation_queues_project_name"),
    )
    op.create_table(
        "annotation_tasks",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("queue_id", sa.String(40), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("experiment_id", sa.String(40), nullable=True),
        sa.Column("variant", sa.String(100), nullable=True),
        sa.Column("item_id", sa.String(200), nullable=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("string_value", sa.String(200), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("annotator", sa.String(40), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("done_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_tasks"),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["annotation_queues.id"], name="fk_annotation_tasks_queue_id_annotation_queues"
        ),
        sa.UniqueConstraint("queue_id", "target", name="uq_annotation_tasks_queue_target"),
    )
    op.create_index("ix_annotation_tasks_queue_status", "annotation_tasks", ["queue_id", "status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_annotation_tasks_queue_status", table_name="annotation_tasks")
    op.drop_table("annotation_tasks")
    op.drop_table("annotation_queues")
