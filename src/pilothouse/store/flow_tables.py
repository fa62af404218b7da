"""Tables of durable workflows (migration 0021_flows; the SQL checkpoint store is store/flows.py).

- `flow_runs`: one row per run: its status, state, frontier (`next_steps`), spend, lease and last checkpoint seq.
- `flow_checkpoints`: one row per recorded step, `(run_id, seq)`, written in the same transaction as the run's
  new state, so a run's state is always the state after its last checkpoint.
- `flow_effects`: results of side effects under their idempotency key, `(run_id, key)`: a retried or resumed
  step reuses the recorded result instead of acting again.
- `flow_switches`: the per-workflow kill switch: a disabled flow's runs are not claimed and new runs are refused.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from pilothouse.store.tables import metadata
from pilothouse.store.types import JSONType, Money

flow_runs = Table(
    "flow_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("flow", String(500), nullable=False),
    Column("flow_name", String(100), nullable=False),
    Column("flow_hash", String(64), nullable=False),
    Column("status", String(24), nullable=False),
    Column("input", JSONType, nullable=False),
    Column("state", JSONType, nullable=False),
    Column("next_steps", JSONType, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("budget", JSONType, nullable=False),
    Column("spent", JSONType, nullable=False),
    Column("error", JSONType, nullable=True),
    Column("trace_id", String(32), nullable=True),
    Column("parent_run_id", String(40), nullable=True),
    Column("created_by", String(40), nullable=True),
    Column("replay_of", String(40), nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_flow_runs_status_lease_expires_at", "status", "lease_expires_at"),
    Index("ix_flow_runs_project_id_created_at", "project_id", "created_at"),
    Index("ix_flow_runs_project_id_flow_name_created_at", "project_id", "flow_name", "created_at"),
)

flow_checkpoints = Table(
    "flow_checkpoints",
    metadata,
    Column("run_id", String(40), ForeignKey("flow_runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("step", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", JSONType, nullable=True),
    Column("output", JSONType, nullable=True),
    Column("state_after", JSONType, nullable=False),
    Column("decision", JSONType, nullable=True),
    Column("error", JSONType, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=False),
    Column("cost_usd", Money, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("span_id", String(16), nullable=True),
    Column("item", Integer, nullable=True),
)

flow_effects = Table(
    "flow_effects",
    metadata,
    Column("run_id", String(40), ForeignKey("flow_runs.id"), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("result", JSONType, nullable=True),
    Column("created_at", Float, nullable=False),
)

flow_switches = Table(
    "flow_switches",
    metadata,
    Column("project_id", String(40), ForeignKey("projects.id"), primary_key=True),
    Column("flow_name", String(100), primary_key=True),
    Column("disabled", Boolean, nullable=False),
    Column("reason", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(40), nullable=True),
)
