"""spans: no foreign key to traces; the trace writers' one write path guarantees a span's trace row instead.

Every span is written by `tracing/merge.py` `write_parts` (SDK batches, gateway calls, OTLP ingest, spill
replays) in the transaction that inserts or merges its trace row, and `write_parts` refuses a part with a span
whose trace is not among its trace rows (the clash error, before anything is inserted); the call recovery of
gateway/limits/ledger_recovery.py inserts the trace row first, in the same transaction. Trace rows are never
deleted (retention purges content only). So the per-row check of the foreign key protected nothing that is not
already guaranteed, and it was the largest single cost of the PostgreSQL server per stored span (an SPI query and
a row lock per span, 3.5 to 7 µs of about 25; docs/benchmarks.md, OTLP ingest throughput).

PostgreSQL drops the constraint in place (instantly). SQLite cannot drop a constraint, so the table is rebuilt
(alembic's batch mode: copied into a new table, its index recreated): seconds per million spans.

Revision ID: 0026_spans_without_trace_fk
Revises: 0025_user_rollups
"""

from __future__ import annotations

import warnings

from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0026_spans_without_trace_fk"
down_revision = "0025_user_rollups"
branch_labels = None
depends_on = None

_FK = "fk_spans_trace_id_traces"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_FK, "spans", type_="foreignkey")
        return
    with warnings.catch_warnings():  # the rebuild reflects `traces` too, whose expression index it leaves alone
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        with op.batch_alter_table("spans") as batch:
            batch.drop_constraint(_FK, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(_FK, "spans", "traces", ["trace_id"], ["id"])
        return
    with op.batch_alter_table("spans") as batch:
        batch.create_foreign_key(_FK, "traces", ["trace_id"], ["id"])
