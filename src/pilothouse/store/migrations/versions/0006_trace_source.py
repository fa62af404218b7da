"""`traces.source`: who made the call a trace records (`http`, `prompt_test`, `eval`, `flow`, `sdk`).

Existing rows are filled in from what could write them before this revision: the scenario tests run in the
server (named `prompt.test`) and the HTTP gateway (every other trace, the ones recovered from the write-ahead
ledger included, since only HTTP calls were admitted then). The column stays nullable: a call recovered from
the ledger after this revision has no known source.

Revision ID: 0006_trace_source
Revises: 0005_inflight_calls
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_trace_source"
down_revision = "0005_inflight_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("traces", sa.Column("source", sa.String(20), nullable=True))
    op.execute("UPDATE traces SET source = 'prompt_test' WHERE name = 'prompt.test'")
    op.execute("UPDATE traces SET source = 'http' WHERE source IS NULL")


def downgrade() -> None:
    op.drop_column("traces", "source")  # SQLite 3.35+ drops a plain column in place (no table rebuild)
