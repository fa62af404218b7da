"""experiments: dataset versions run against variants and scored by metrics (docs/evaluation.md).

- `experiments`: the run's spec (variants, metrics, concurrency), status, estimate, hard cost cap and heartbeat.
- `experiment_results`: one row per (experiment, variant, item), written as soon as the item is scored, so a
  resumed run never pays for it again.

Revision ID: 0018_experiments
Revises: 0017_datasets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType, Money

revision = "0018_experiments"
down_revision = "0017_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dataset_id", sa.String(40), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("spec", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("estimate_usd", sa.Text, nullable=True),
        sa.Column("max_cost_usd", Money, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_experiments_project_id_projects"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name="fk_experiments_dataset_id_datasets"),
    )
    op.create_index("ix_experiments_project_created", "experiments", ["project_id", "created_at"])
    op.create_table(
        "experiment_results",
        sa.Column("experiment_id", sa.String(40), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("input_tokens", sa.Integer, nullable=True),
        sa.Column("output_tokens", sa.Integer, nullable=True),
        sa.Column("cost_usd", Money, nullable=True),
        sa.Column("scores", JSONType, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "variant", "item_id", name="pk_experiment_results"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_experiment_results_experiment_id_experiments"
        ),
    )


def downgrade() -> None:
    op.drop_table("experiment_results")
    op.drop_index("ix_experiments_project_created", table_name="experiments")
    op.drop_table("experiments")
