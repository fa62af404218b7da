"""trace search: rollups per minute and hour, full-text search, content capture per project, list indexes.

- `trace_rollups`: additive counters per (grain, bucket, project, key, model, prompt, version), kept by the
  trace sink in the transaction that stores the traces (store/rollups.py).
- `trace_search`: the text of each trace's kept content. PostgreSQL: a `tsvector` column with a GIN index;
  SQLite: an FTS5 table whose rowid is the trace's rowid (with its own copy of the text: the SQLite 3.40 of
  common distributions cannot delete from a contentless one). A trigger removes a trace from it when retention
  purges the trace's content (`content_purged_at` set), so purged text is never found again.
- `projects.content_capture`: off, redacted or full (null: the server's `traces.capture_content`).
- Indexes for the trace list filters (model, user, session, status within a project, newest first).

Revision ID: 0013_trace_search
Revises: 0012_monitors
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_trace_search"
down_revision = "0012_monitors"
branch_labels = None
depends_on = None

LATENCY_BUCKETS = 12  # store/rollups.py LATENCY_BOUNDS_MS (+1 for the overflow)

_LIST_INDEXES = {
    "ix_traces_project_model_started": ("project_id", "model", "started_at"),
    "ix_traces_project_user_started": ("project_id", "user_id", "started_at"),
    "ix_traces_project_session_started": ("project_id", "session_id", "started_at"),
    "ix_traces_project_status_started": ("project_id", "status", "started_at"),
}


def _rollup_columns() -> list[sa.Column[object]]:
    counters = [
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost_pico",
        "latency_count",
        "cache_hits",
        "cache_saved_pico",
        "guard_blocks",
        "llm_calls",
        "generated_tokens",
        "unpriced_calls",
        "ttft_count",
    ]
    cols: list[sa.Column[object]] = [
        sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in counters
    ]
    cols += [
        sa.Column(name, sa.Float, nullable=False, server_default="0")
        for name in ("latency_sum_ms", "generation_ms", "ttft_sum_ms")
    ]
    cols += [
        sa.Column(f"lat_{i:02d}", sa.BigInteger, nullable=False, server_default="0") for i in range(LATENCY_BUCKETS)
    ]
    return cols


def upgrade() -> None:
    op.add_column("projects", sa.Column("content_capture", sa.String(10), nullable=True))
    op.create_table(
        "trace_rollups",
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("bucket_s", sa.Integer, nullable=False),
        sa.Column("bucket_start", sa.Float, nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_name", sa.String(200), nullable=False),
        sa.Column("prompt_version", sa.Integer, nullable=False),
        *_rollup_columns(),
        sa.PrimaryKeyConstraint(
            "project_id",
            "bucket_s",
            "bucket_start",
            "api_key_id",
            "model",
            "prompt_name",
            "prompt_version",
            name="pk_trace_rollups",
        ),
    )
    for name, cols in _LIST_INDEXES.items():
        op.create_index(name, "traces", list(cols))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _search_postgresql()
    else:
        _search_sqlite()


def _search_postgresql() -> None:
    op.execute(
        "CREATE TABLE trace_search ("
        " trace_id VARCHAR(32) NOT NULL CONSTRAINT pk_trace_search PRIMARY KEY"
        " CONSTRAINT fk_trace_search_trace_id_traces REFERENCES traces (id),"
        " document TSVECTOR NOT NULL)"
    )
    op.execute("CREATE INDEX ix_trace_search_document ON trace_search USING GIN (document)")
    op.execute("CREATE INDEX ix_traces_tags ON traces USING GIN (tags jsonb_path_ops)")
    op.execute(
        "CREATE FUNCTION pilothouse_trace_search_purge() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM trace_search WHERE trace_id = NEW.id; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER trg_trace_search_purge AFTER UPDATE OF content_purged_at ON traces FOR EACH ROW "
        "WHEN (NEW.content_purged_at IS NOT NULL) EXECUTE FUNCTION pilothouse_trace_search_purge()"
    )


def _search_sqlite() -> None:
    op.execute("CREATE VIRTUAL TABLE trace_search USING fts5(document, tokenize='unicode61 remove_diacritics 2')")
    op.execute(
        "CREATE TRIGGER trg_trace_search_purge AFTER UPDATE OF content_purged_at ON traces "
        "WHEN NEW.content_purged_at IS NOT NULL BEGIN DELETE FROM trace_search WHERE rowid = NEW.rowid; END"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_trace_search_purge ON traces")
        op.execute("DROP FUNCTION pilothouse_trace_search_purge()")
        op.execute("DROP INDEX ix_traces_tags")
    else:
        op.execute("DROP TRIGGER trg_trace_search_purge")
    op.execute("DROP TABLE trace_search")
    for name in _LIST_INDEXES:
        op.drop_index(name, "traces")
    op.drop_table("trace_rollups")
    # SQLite 3.35+ drops a plain column in place: a batch rebuild of `projects` would drop a table other
    # tables' foreign keys point at, which SQLite refuses while they hold rows
    op.drop_column("projects", "content_capture")
