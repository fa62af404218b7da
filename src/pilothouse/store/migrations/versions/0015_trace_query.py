"""trace query at scale: indexes for the prompt-version list filter and prompt reads, a time-to-first-token
histogram in the rollups.

- `ix_traces_project_prompt_started` (project, prompt, version, start): the trace list filtered by prompt
  version, newest first, and every read of one prompt's traces in a window (prompt stats' edges, canary
  checks) walk it in order instead of sorting all of a prompt's traces.
- `ix_traces_project_cost`, `ix_traces_project_latency` (an expression index on the duration in ms, the
  expression `store.traces.LATENCY_MS` renders) and `ix_scores_project_name_value`: the list's cost, latency
  and score filters start from the matching traces when they are few (store/trace_pages.py).
- `trace_rollups.ttft_00..ttft_11`: streamed llm calls' time to first token per bucket of
  `store.rollups.LATENCY_BOUNDS_MS`, so the cost report's time-to-first-token median can come from the rollups.
  Rows counted before this migration hold zeros there; the report notices (the histogram does not add up to
  `ttft_count`) and says the median is unknown until `store.rollups.rebuild` recounts that window.

Revision ID: 0015_trace_query
Revises: 0014_input_drift
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_trace_query"
down_revision = "0014_input_drift"
branch_labels = None
depends_on = None

TTFT_BUCKETS = 12  # store/rollups.py LATENCY_BOUNDS_MS (+1 for the overflow)
_INDEXES = {
    "ix_traces_project_prompt_started": ("traces", ("project_id", "prompt_name", "prompt_version", "started_at")),
    "ix_scores_project_name_value": ("scores", ("project_id", "name", "value")),
    "ix_traces_project_cost": ("traces", ("project_id", "cost_usd")),
}
LATENCY_INDEX = "ix_traces_project_latency"
LATENCY_EXPRESSION = "((ended_at - started_at) * 1000.0)"  # exactly as store/traces.py renders it


def upgrade() -> None:
    for name, (table, cols) in _INDEXES.items():
        op.create_index(name, table, list(cols))
    op.execute(f"CREATE INDEX {LATENCY_INDEX} ON traces (project_id, {LATENCY_EXPRESSION})")
    for i in range(TTFT_BUCKETS):
        op.add_column("trace_rollups", sa.Column(f"ttft_{i:02d}", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    # SQLite 3.35+ drops a plain column in place (no batch rebuild of the table)
    for i in range(TTFT_BUCKETS):
        op.drop_column("trace_rollups", f"ttft_{i:02d}")
    op.execute(f"DROP INDEX {LATENCY_INDEX}")
    for name, (table, _) in _INDEXES.items():
        op.drop_index(name, table)
