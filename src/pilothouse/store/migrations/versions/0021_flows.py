"""flows: durable workflow runs, their checkpoints, side-effect results and the per-workflow kill switch
(docs/flows.md; tables in store/flow_tables.py).

- `flow_runs`: one per run: status, state, frontier, spend, lease, last checkpoint seq.
- `flow_checkpoints`: one per recorded step, `(run_id, seq)`.
- `flow_effects`: side-effect results under their idempotency key, `(run_id, key)`.
- `flow_switches`: a disabled flow's runs are not claimed and new runs refused.

Revision ID: 0021_flows
Revises: 0020_rag
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType, Money

revision = "0021_flows"
down_revision = "0020_rag"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("flow", sa.String(500), nullable=False),
        sa.Column("flow_name", sa.String(100), nullable=False),
        sa.Column("flow_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("input", JSONType, nullable=False),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("next_steps", JSONType, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("budget", JSONType, nullable=False),
        sa.Column("spent", JSONType, nullable=False),
        sa.Column("error", JSONType, nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("parent_run_id", sa.String(40), nullable=True),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("replay_of", sa.String(40), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_runs"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_flow_runs_project_id_projects"),
    )
    op.create_index("ix_flow_runs_status_lease_expires_at", "flow_runs", ["status", "lease_expires_at"])
    op.create_index("ix_flow_runs_project_id_created_at", "flow_runs", ["project_id", "created_at"])
    op.create_index(
        "ix_flow_runs_project_id_flow_name_created_at", "flow_runs", ["project_id", "flow_name", "created_at"]
    )
    op.create_table(
        "flow_checkpoints",
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", JSONType, nullable=True),
        sa.Column("output", JSONType, nullable=True),
        sa.Column("state_after", JSONType, nullable=False),
        sa.Column("decision", JSONType, nullable=True),
        sa.Column("error", JSONType, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("cost_usd", Money, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("span_id", sa.String(16), nullable=True),
        sa.Column("item", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_flow_checkpoints"),
        sa.ForeignKeyConstraint(["run_id"], ["flow_runs.id"], name="fk_flow_checkpoints_run_id_flow_runs"),
    )
    op.create_table(
        "flow_effects",
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_flow_effects"),
        sa.ForeignKeyConstraint(["run_id"], ["flow_runs.id"], name="fk_flow_effects_run_id_flow_runs"),
    )
    op.create_table(
        "flow_switches",
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("flow_name", sa.String(100), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("project_id", "flow_name", name="pk_flow_switches"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_flow_switches_project_id_projects"),
    )


def downgrade() -> None:
    op.drop_table("flow_switches")
    op.drop_table("flow_effects")
    op.drop_table("flow_checkpoints")
    op.drop_index("ix_flow_runs_project_id_flow_name_created_at", table_name="flow_runs")
    op.drop_index("ix_flow_runs_project_id_created_at", table_name="flow_runs")
    op.drop_index("ix_flow_runs_status_lease_expires_at", table_name="flow_runs")
    op.drop_table("flow_runs")
