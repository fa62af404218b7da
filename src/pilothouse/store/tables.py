"""Table definitions (SQLAlchemy Core). Every schema change also gets an Alembic migration.

Timestamps are UTC epoch seconds (float): portable, cheap to write on the hot path and easy to range-filter.
Every row belongs to a project: the tenant boundary of the data model.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from pilothouse.store.types import JSONType, Money

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("revoked_at", Float, nullable=True),
)

traces = Table(
    "traces",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("api_key_id", String(40), nullable=True),
    Column("name", String(200), nullable=False),
    Column("session_id", String(200), nullable=True),
    Column("user_id", String(200), nullable=True),
    Column("tags", JSONType, nullable=True),
    Column("status", String(10), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("model", String(200), nullable=True),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Money, nullable=False, default=0),
    Index("ix_traces_project_started", "project_id", "started_at"),
)

spans = Table(
    "spans",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("trace_id", String(32), ForeignKey("traces.id"), nullable=False, index=True),
    Column("parent_id", String(16), nullable=True),
    Column("project_id", String(40), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(10), nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("ttft_ms", Float, nullable=True),
    Column("model", String(200), nullable=True),
    Column("provider", String(50), nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("cost_usd", Money, nullable=True),
    Column("attributes", JSONType, nullable=True),
    Column("input", JSONType, nullable=True),
    Column("output", JSONType, nullable=True),
)

scores = Table(
    "scores",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("trace_id", String(32), ForeignKey("traces.id"), nullable=False, index=True),
    Column("span_id", String(16), nullable=True),
    Column("name", String(200), nullable=False),
    Column("value", Float, nullable=True),
    Column("string_value", Text, nullable=True),
    Column("source", String(10), nullable=False),
    Column("comment", Text, nullable=True),
    Column("author", String(200), nullable=True),
    Column("eval_run_id", String(40), nullable=True),
    Column("created_at", Float, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("project_id", String(40), nullable=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(200), nullable=True),
    Column("details", JSONType, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
