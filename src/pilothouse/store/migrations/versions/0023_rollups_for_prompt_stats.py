"""prompt stats at a million traces: day rows and caller mistakes in the rollups, score counters beside them.

- `trace_rollups` rows of a third grain, the UTC day (`bucket_s` 86400): a 30-day report reads 30 rows per
  group instead of 720 hour rows.

- `trace_rollups.caller_errors`: failed requests a caller mistake ended (store/caller_errors.py), counted as
  traces are written, so prompt stats need not read the failed spans of a long window's failed traces.
- `prompt_score_rollups`: per hour of trace start, prompt version and score name, the traces holding that
  numeric score and the sum of their per-trace means (store/score_rollups.py), kept when a score is written.

Both are filled here from the rows already stored (the rule and the sums are written out below as they stand
today, so this migration does not change when the code does).

Revision ID: 0023_rollups_for_prompt_stats
Revises: 0021_flows
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0023_rollups_for_prompt_stats"
down_revision = "0021_flows"
branch_labels = None
depends_on = None

GRAINS = (60, 3600)  # the grains before this migration; it adds the day
HOUR, DAY = 3600, 86_400
_COUNTERS = (
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
    "caller_errors",
    "latency_sum_ms",
    "generation_ms",
    "ttft_sum_ms",
    *(f"lat_{i:02d}" for i in range(12)),
    *(f"ttft_{i:02d}" for i in range(12)),
)
VERSION_CAUSED_CODES = frozenset({"upstream_bad_request", "context_length_exceeded"})


def _caller_error(attrs: Any) -> bool:
    if not isinstance(attrs, dict):
        return False
    status, code = attrs.get("http.response.status_code"), attrs.get("error.type")
    if isinstance(status, bool) or not isinstance(status, int):
        return False
    return 400 <= status < 500 and status != 429 and code not in VERSION_CAUSED_CODES


def _backfill_caller_errors(conn: sa.Connection) -> None:
    traces = sa.table(
        "traces",
        *(
            sa.column(name)
            for name in ("id", "project_id", "api_key_id", "model", "prompt_name", "prompt_version", "started_at")
        ),
        sa.column("status"),
    )
    spans = sa.table("spans", sa.column("trace_id"), sa.column("status"), sa.column("attributes"))
    rollups = sa.table(
        "trace_rollups",
        *(
            sa.column(name)
            for name in (
                "project_id",
                "bucket_s",
                "bucket_start",
                "api_key_id",
                "model",
                "prompt_name",
                "prompt_version",
                "caller_errors",
            )
        ),
    )
    query = (
        sa.select(
            traces.c.id,
            traces.c.project_id,
            traces.c.api_key_id,
            traces.c.model,
            traces.c.prompt_name,
            traces.c.prompt_version,
            traces.c.started_at,
            spans.c.attributes,
        )
        .join(spans, spans.c.trace_id == traces.c.id)
        .where(traces.c.status == "error", spans.c.status == "error")
    )
    ended: dict[str, tuple[Any, ...]] = {}
    for row in conn.execute(query):
        attrs = row.attributes
        if isinstance(attrs, str):
            attrs = json.loads(attrs)
        if row.id not in ended and _caller_error(attrs):
            dims = (row.api_key_id or "", row.model or "", row.prompt_name or "", row.prompt_version or 0)
            ended[row.id] = (row.project_id, float(row.started_at), dims)
    counts: Counter[tuple[Any, ...]] = Counter()
    for project_id, started, dims in ended.values():
        for grain in GRAINS:
            counts[(project_id, grain, float(math.floor(started / grain) * grain), *dims)] += 1
    c = rollups.c
    for (project_id, grain, start, key, model, prompt, version), n in counts.items():
        conn.execute(
            sa.update(rollups)
            .where(
                c.project_id == project_id,
                c.bucket_s == grain,
                c.bucket_start == start,
                c.api_key_id == key,
                c.model == model,
                c.prompt_name == prompt,
                c.prompt_version == version,
            )
            .values(caller_errors=c.caller_errors + n)
        )


def _backfill_scores(conn: sa.Connection) -> None:
    hour = (
        "CAST(FLOOR(t.started_at / 3600.0) AS INTEGER)"
        if conn.dialect.name == "postgresql"
        else "CAST(t.started_at / 3600.0 AS INTEGER)"
    )
    conn.execute(
        sa.text(
            "INSERT INTO prompt_score_rollups (project_id, prompt_name, prompt_version, bucket_start, name, traces,"
            " total) SELECT project_id, prompt_name, prompt_version, hour * 3600.0, name, COUNT(*), SUM(mean) FROM"
            f" (SELECT t.project_id, t.prompt_name, t.prompt_version, {hour} AS hour, s.name, AVG(s.value) AS mean"
            " FROM scores s JOIN traces t ON t.id = s.trace_id WHERE s.value IS NOT NULL AND t.prompt_name IS NOT"
            " NULL AND t.prompt_version IS NOT NULL GROUP BY t.id, t.project_id, t.prompt_name, t.prompt_version,"
            f" {hour}, s.name) per_trace GROUP BY project_id, prompt_name, prompt_version, hour, name"
        )
    )


def _backfill_days(conn: sa.Connection) -> None:
    day = (
        "FLOOR(bucket_start / 86400.0)"
        if conn.dialect.name == "postgresql"
        else "CAST(bucket_start / 86400.0 AS INTEGER)"
    )
    keys = "project_id, api_key_id, model, prompt_name, prompt_version"
    conn.execute(
        sa.text(
            f"INSERT INTO trace_rollups (bucket_s, bucket_start, {keys}, {', '.join(_COUNTERS)})"
            f" SELECT {DAY}, {day} * {DAY}.0, {keys}, {', '.join(f'SUM({c})' for c in _COUNTERS)}"
            f" FROM trace_rollups WHERE bucket_s = {HOUR} GROUP BY {day}, {keys}"
        )
    )


def upgrade() -> None:
    op.add_column("trace_rollups", sa.Column("caller_errors", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "prompt_score_rollups",
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("prompt_name", sa.String(200), nullable=False),
        sa.Column("prompt_version", sa.Integer, nullable=False),
        sa.Column("bucket_start", sa.Float, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("traces", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total", sa.Float, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("project_id", "prompt_name", "prompt_version", "bucket_start", "name"),
    )
    conn = op.get_bind()
    _backfill_caller_errors(conn)
    _backfill_days(conn)
    _backfill_scores(conn)


def downgrade() -> None:
    op.execute(f"DELETE FROM trace_rollups WHERE bucket_s = {DAY}")
    op.drop_table("prompt_score_rollups")
    op.drop_column("trace_rollups", "caller_errors")
