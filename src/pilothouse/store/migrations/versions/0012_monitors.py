"""monitors: alert rules, alert episodes and online-evaluation sampling rules (docs/monitors.md).

Revision ID: 0012_monitors
Revises: 0011_feedback
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pilothouse.store.types import JSONType

revision = "0012_monitors"
down_revision = "0011_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_rules",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("scope", JSONType, nullable=False),
        sa.Column("detector", JSONType, nullable=False),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_rules"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_monitor_rules_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_monitor_rules_project_name"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("rule_id", sa.String(40), nullable=False),
        sa.Column("rule_name", sa.String(100), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("open_rule_id", sa.String(40), nullable=True),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("resolved_at", sa.Float, nullable=True),
        sa.Column("evidence", JSONType, nullable=False),
        sa.Column("resolution", JSONType, nullable=True),
        sa.Column("delivery", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_monitor_alerts_project_id_projects"),
        sa.UniqueConstraint("open_rule_id", name="uq_monitor_alerts_open_rule_id"),
    )
    op.create_index("ix_monitor_alerts_project_opened", "monitor_alerts", ["project_id", "opened_at"])
    op.create_table(
        "online_eval_rules",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("scope", JSONType, nullable=False),
        sa.Column("scorers", JSONType, nullable=False),
        sa.Column("budget", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("cursor_at", sa.Float, nullable=False),
        sa.Column("cursor_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_online_eval_rules"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_online_eval_rules_project_id_projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_online_eval_rules_project_name"),
    )


def downgrade() -> None:
    op.drop_table("online_eval_rules")
    op.drop_index("ix_monitor_alerts_project_opened", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_rules")
