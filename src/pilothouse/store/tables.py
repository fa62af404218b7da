"""Table definitions (SQLAlchemy Core). Every schema change also gets an Alembic migration.

Timestamps are UTC epoch seconds (float): portable, cheap to write on the hot path and easy to range-filter.
Every row belongs to a project: the tenant boundary of the data model.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    # off, redacted or full; None: the server's `traces.capture_content` (tracing/capture.py)
    Column("content_capture", String(10), nullable=True),
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
    Column("status", String(20), nullable=False),  # ok, error, unknown_outcome (tracing/model.py)
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("model", String(200), nullable=True),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Money, nullable=False, default=0),
    Column("prompt_name", String(200), nullable=True),
    Column("prompt_version", Integer, nullable=True),
    Column("source", String(20), nullable=True),  # http, prompt_test, eval, flow, sdk (tracing/model.py)
    Column("content_purged_at", Float, nullable=True),  # retention deleted the spans' content (store/retention.py)
    Index("ix_traces_project_started", "project_id", "started_at"),
    Index("ix_traces_project_prompt", "project_id", "prompt_name", "prompt_version"),
    Index("ix_traces_project_model_started", "project_id", "model", "started_at"),
    Index("ix_traces_project_user_started", "project_id", "user_id", "started_at"),
    Index("ix_traces_project_session_started", "project_id", "session_id", "started_at"),
    Index("ix_traces_project_status_started", "project_id", "status", "started_at"),
    Index("ix_traces_project_prompt_started", "project_id", "prompt_name", "prompt_version", "started_at"),  # 0015
    Index("ix_traces_project_cost", "project_id", "cost_usd"),  # 0015: the list's cost range
)

spans = Table(
    "spans",
    metadata,
    Column("id", String(16), primary_key=True),
    # no foreign key (0026): tracing/merge.py `write_parts` stores every span with its trace row, checked there
    Column("trace_id", String(32), nullable=False, index=True),
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
    # numeric, boolean (value 1.0 / 0.0) or categorical (string_value); store/scores.py. Set on every row.
    Column("data_type", String(12), nullable=True),
    Index("ix_scores_project_name_value", "project_id", "name", "value"),  # 0015: the list's score filter
)

# End users' thumbs up/down on a trace (store/feedback.py); each is also the `feedback` score `score_id`.
feedback = Table(
    "feedback",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("trace_id", String(32), ForeignKey("traces.id"), nullable=False, index=True),
    Column("score_id", String(40), nullable=False),
    Column("thumbs", String(4), nullable=False),  # up, down
    Column("comment", Text, nullable=True),
    Column("user_id", String(200), nullable=True),  # the end user who gave it, as the application names them
    Column("author", String(40), nullable=True),  # the key that sent it
    Column("created_at", Float, nullable=False),
    Index("ix_feedback_project_created", "project_id", "created_at"),
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

# A signed checkpoint of the audit chain head (audit/checkpoints.py); also appended to a file outside the database.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(128), nullable=False),
)

prompts = Table(
    "prompts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    UniqueConstraint("project_id", "name", name="uq_prompts_project_name"),
)

# A version is immutable. `template` is the canonical content the hash covers: {"type": "chat"|"text",
# "messages" or "text", "variables" (schema), "config" (model, temperature, max_tokens, tools, ...)}.
# `source_text`/`source_format` keep the file as pushed, so `prompt pull` reproduces it byte for byte.
prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("prompt_id", String(40), ForeignKey("prompts.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("template", JSONType, nullable=False),
    Column("source_text", Text, nullable=True),
    Column("source_format", String(10), nullable=True),
    Column("message", Text, nullable=True),
    Column("author", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_prompt_version"),
    Index("ix_prompt_versions_prompt_hash", "prompt_id", "content_hash"),
)

# A label points at one version, or splits traffic across versions by weight (canary):
# splits = [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}].
prompt_labels = Table(
    "prompt_labels",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("prompt_id", String(40), ForeignKey("prompts.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("splits", JSONType, nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("rollback_rule", JSONType, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(40), nullable=True),
    UniqueConstraint("prompt_id", "name", name="uq_prompt_labels_prompt_name"),
)

# The scenario tests of a prompt (the test file pushed beside it); used by `prompt test` and promotion.
prompt_test_suites = Table(
    "prompt_test_suites",
    metadata,
    Column("prompt_id", String(40), ForeignKey("prompts.id"), primary_key=True),
    Column("cases", JSONType, nullable=False),
    Column("source_text", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
)

# Budgets (docs/cost-control.md): a spending limit on one subject per period. scope/subject: key/<key id>,
# project/<project id>, user/<the request's `user`>, prompt/<prompt name>. The spend itself lives in the
# LimitStore (Redis with replicas), not here.
budgets = Table(
    "budgets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("period", String(10), nullable=False),
    Column("limit_usd", Money, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("project_id", "scope", "subject", "period", name="uq_budgets_project_scope_subject_period"),
)

# Rate limits and the max_tokens cap of one subject: key/<key id>, project/<project id>, model/<model name>
# (a model's limit counts that project's calls of it). NULL: no limit of that kind.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("max_tokens", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("project_id", "scope", "subject", name="uq_rate_limits_project_scope_subject"),
)

# The write-ahead ledger (docs/cost-control.md#the-spend-guarantee): one row per budgeted call between its
# admission and the commit of its trace, written before the call goes upstream. `status`: `in_flight` (the
# row is deleted in the transaction that stores the call's trace), or `settle_pending` (the trace is stored
# and the LimitStore has not yet taken the actual amounts, `actual_*`; retried from `retry_at`). A row left
# `in_flight` by a replica that died is settled at its reservation and stored as an `unknown_outcome` trace.
# `counters`: {"windows": [[key, reserved tokens]], "counters": [[key, reserved, kind, alert_above,
# expire_at_ms, idle_ttl_ms]]} with kind budget, calls, repeats, tokens or cost (store/inflight.py).
inflight_calls = Table(
    "inflight_calls",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("project_id", String(40), nullable=False),
    Column("api_key_id", String(40), nullable=True),
    Column("user_id", String(200), nullable=True),
    Column("session_id", String(200), nullable=True),
    Column("prompt_name", String(200), nullable=True),
    Column("prompt_version", Integer, nullable=True),
    Column("model", String(200), nullable=True),
    Column("reservation", String(32), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_pico", BigInteger, nullable=False),
    Column("counters", JSONType, nullable=False),
    Column("process", String(120), nullable=False),
    Column("status", String(20), nullable=False),
    Column("actual_tokens", BigInteger, nullable=True),
    Column("actual_cost_pico", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("retry_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_inflight_calls_status", "status"),
)

# Per-project override of the semantic cache's similarity threshold (docs/caching.md#per-project-thresholds);
# a project without a row uses `cache.semantic.threshold`. The gateway reads them all at once, every
# `limits.definitions_ttl_s` at most (gateway/cache/thresholds.py).
cache_thresholds = Table(
    "cache_thresholds",
    metadata,
    Column("project_id", String(40), ForeignKey("projects.id"), primary_key=True),
    Column("threshold", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(40), nullable=True),
)

# Guard policies (docs/security.md#guard-policies), versioned like prompts: a push whose validated body differs
# from the latest version's makes a new version; the latest version of an enabled policy is the one in force.
policies = Table(
    "policies",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(40), nullable=True),
    UniqueConstraint("project_id", "name", name="uq_policies_project_name"),
)

# An immutable version: `body` is the validated policy (guards/policy/model.py) the hash covers; `source_text`
# the file as pushed.
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("policy_id", String(40), ForeignKey("policies.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("body", JSONType, nullable=False),
    Column("source_text", Text, nullable=True),
    Column("author", String(40), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("policy_id", "version", name="uq_policy_versions_policy_version"),
)

# The tool registry (docs/tools.md): one row per tool of a project; `parameters` is the JSON Schema of its
# arguments, `risk` low, medium or high; `version` counts the changes a re-registration made.
tools = Table(
    "tools",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("risk", String(10), nullable=False),
    Column("parameters", JSONType, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(40), nullable=True),
    UniqueConstraint("project_id", "name"),
)

# Tool allow-lists: a tool granted to a project's every key (`kind` project, `subject` ""), one key (its id)
# or one agent (its name), with the argument rules the calls must pass (a JSON list, tools/constraints.py).
tool_grants = Table(
    "tool_grants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("tool", String(64), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("rules", JSONType, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    UniqueConstraint("project_id", "tool", "kind", "subject"),
)

# Monitors (docs/monitors.md): an alert rule watches one metric of a project's traces (scope: prompt, model,
# tag) with a change-point detector (`detector`: its settings); `webhook_url` gets the alerts.
monitor_rules = Table(
    "monitor_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("metric", String(40), nullable=False),
    Column("scope", JSONType, nullable=False),
    Column("detector", JSONType, nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    UniqueConstraint("project_id", "name", name="uq_monitor_rules_project_name"),
)

# An alert episode: opened once when a rule's detector fires (with the evidence), resolved when the series
# returns. `open_rule_id` is the rule's id while the episode is open and NULL after: its unique index keeps one
# open episode per rule even with several replicas evaluating. Kept after the rule is removed (history).
monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("rule_id", String(40), nullable=False),
    Column("rule_name", String(100), nullable=False),
    Column("metric", String(40), nullable=False),
    Column("open_rule_id", String(40), nullable=True, unique=True),
    Column("opened_at", Float, nullable=False),
    Column("resolved_at", Float, nullable=True),
    Column("evidence", JSONType, nullable=False),
    Column("resolution", JSONType, nullable=True),
    Column("delivery", JSONType, nullable=True),
    Index("ix_monitor_alerts_project_opened", "project_id", "opened_at"),
)

# Online evaluation (monitors/online_eval.py): a sampling rule scores a share of a project's new traces in the
# background; `cursor_at`/`cursor_id` mark the last trace it considered.
online_eval_rules = Table(
    "online_eval_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("rate", Float, nullable=False),
    Column("scope", JSONType, nullable=False),
    Column("scorers", JSONType, nullable=False),
    Column("budget", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("cursor_at", Float, nullable=False),
    Column("cursor_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    UniqueConstraint("project_id", "name", name="uq_online_eval_rules_project_name"),
)

# Input drift (monitors/drift.py): a sample of traces' input text embedded off the request path (MiniLM, int8 with
# a per-vector `scale`), with the trace's time and scope columns so a window is read without joining traces.
input_embeddings = Table(
    "input_embeddings",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("prompt_name", String(200), nullable=True),
    Column("prompt_version", Integer, nullable=True),
    Column("model", String(200), nullable=True),
    Column("source", String(20), nullable=True),
    Column("tags", JSONType, nullable=True),
    Column("embedder", String(60), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("scale", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_input_embeddings_project_started", "project_id", "started_at"),
)

# How far each input-drift rule's sampler got: traces in [covered_from, cursor_at) were sampled and embedded.
input_drift_cursors = Table(
    "input_drift_cursors",
    metadata,
    Column("rule_id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("cursor_at", Float, nullable=False),
    Column("covered_from", Float, nullable=False),
)

# Additive counters of traces per minute (bucket_s 60), hour (3600) and UTC day (86400, migration 0023) per
# project, key, model and prompt
# version ("" and 0 stand for none), kept by the trace sink as it stores traces (store/rollups.py).
# `lat_00`..`lat_11` count successful requests per latency bucket (rollups.LATENCY_BOUNDS_MS).
# The full-text index `trace_search` is dialect-specific (FTS5 / tsvector) and created by migration 0013 only.
trace_rollups = Table(
    "trace_rollups",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("bucket_s", Integer, primary_key=True),
    Column("bucket_start", Float, primary_key=True),
    Column("api_key_id", String(40), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("prompt_name", String(200), primary_key=True),
    Column("prompt_version", Integer, primary_key=True),
    *[
        Column(name, BigInteger, nullable=False, server_default="0")
        for name in (
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
            "caller_errors",  # 0023: failed traces a caller mistake ended (store/caller_errors.py)
        )
    ],
    *[
        Column(name, Float, nullable=False, server_default="0")
        for name in ("latency_sum_ms", "generation_ms", "ttft_sum_ms")
    ],
    *[Column(f"lat_{i:02d}", BigInteger, nullable=False, server_default="0") for i in range(12)],
    # 0015: streamed llm calls' time to first token, same bucket bounds as the latency histogram
    *[Column(f"ttft_{i:02d}", BigInteger, nullable=False, server_default="0") for i in range(12)],
)

# The same counters per end user (0025, store/user_rollups.py): per hour (3600) and UTC day (86400) of trace
# start, project, user, key, model and prompt name ("" for none; no prompt version, no minute grain, to keep the
# write cost down), kept by the trace sink for traces that name a user, so the Overview filtered by a user need
# not read that user's rows. The primary key leads with (project, user, grain, bucket start): the read's index.
user_rollups = Table(
    "user_rollups",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("bucket_s", Integer, primary_key=True),
    Column("bucket_start", Float, primary_key=True),
    Column("api_key_id", String(40), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("prompt_name", String(200), primary_key=True),
    *[Column(c.name, c.type, nullable=False, server_default="0") for c in trace_rollups.c if not c.primary_key],
)

# Score counters beside the rollups (0023, store/score_rollups.py): per hour of trace start, prompt version and
# score name, the number of traces holding that numeric score and the sum of each trace's mean value of it, kept
# when a score is written, so prompt stats over a long window need not join every score to its trace.
prompt_score_rollups = Table(
    "prompt_score_rollups",
    metadata,
    Column("project_id", String(40), primary_key=True),
    Column("prompt_name", String(200), primary_key=True),
    Column("prompt_version", Integer, primary_key=True),
    Column("bucket_start", Float, primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("traces", BigInteger, nullable=False, server_default="0"),
    Column("total", Float, nullable=False, server_default="0"),
)

# Evaluation datasets (docs/datasets.md): a dataset has numbered immutable versions; a version is an ordered list
# of items. Items are stored once per dataset by content hash (`dataset_items`) and listed per version
# (`dataset_version_items`), so a version that adds ten items to ten thousand stores ten rows of content.
datasets = Table(
    "datasets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("dataset_id", String(40), ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("splits", JSONType, nullable=False),
    Column("message", Text, nullable=True),
    Column("author", String(40), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
)

# `body` is the validated item (datasets/items.py) whose canonical JSON `content_hash` covers.
dataset_items = Table(
    "dataset_items",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("dataset_id", String(40), ForeignKey("datasets.id"), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("body", JSONType, nullable=False),
    UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_items_dataset_hash"),
)

dataset_version_items = Table(
    "dataset_version_items",
    metadata,
    Column("version_id", String(40), ForeignKey("dataset_versions.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_id", String(40), ForeignKey("dataset_items.id"), nullable=False),
)

# Experiments (docs/evaluation.md): a dataset version run against variants and scored by metrics. One result row
# per (experiment, variant, item), committed as soon as the item is scored, so a resumed run skips it.
experiments = Table(
    "experiments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("dataset_id", String(40), ForeignKey("datasets.id"), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("status", String(16), nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("estimate_usd", Text, nullable=True),
    Column("max_cost_usd", Money, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Index("ix_experiments_project_created", "project_id", "created_at"),
)

experiment_results = Table(
    "experiment_results",
    metadata,
    Column("experiment_id", String(40), ForeignKey("experiments.id"), primary_key=True),
    Column("variant", String(100), primary_key=True),
    Column("item_id", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("output", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("trace_id", String(32), nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("cost_usd", Money, nullable=True),
    Column("scores", JSONType, nullable=False),
    Column("finished_at", Float, nullable=False),
)

# Annotation queues (docs/evaluation.md#people-in-the-loop): items from traces or experiment results for people
# to score with the queue's one score configuration. A done task on a trace also writes a `human` score there.
annotation_queues = Table(
    "annotation_queues",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", String(40), ForeignKey("projects.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=True),
    Column("score", JSONType, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(40), nullable=True),
    UniqueConstraint("project_id", "name", name="uq_annotation_queues_project_name"),
)

annotation_tasks = Table(
    "annotation_tasks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("queue_id", String(40), ForeignKey("annotation_queues.id"), nullable=False),
    Column("target", String(300), nullable=False),
    Column("trace_id", String(32), nullable=True),
    Column("experiment_id", String(40), nullable=True),
    Column("variant", String(100), nullable=True),
    Column("item_id", String(200), nullable=True),
    Column("assignee", String(200), nullable=True),
    Column("status", String(10), nullable=False),
    Column("value", Float, nullable=True),
    Column("string_value", String(200), nullable=True),
    Column("comment", Text, nullable=True),
    Column("annotator", String(40), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("done_at", Float, nullable=True),
    UniqueConstraint("queue_id", "target", name="uq_annotation_tasks_queue_target"),
    Index("ix_annotation_tasks_queue_status", "queue_id", "status", "created_at"),
)

SEARCH_OBJECTS = frozenset({"trace_search", "ix_traces_tags", "ix_traces_project_latency"})
"""Schema objects of migrations 0013 and 0015 that differ per dialect or are expression indexes Alembic cannot
compare, and so are not in `metadata` (store/search.py, store/trace_pages.py)."""


def in_metadata(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's `include_name`: False for the full-text index (and its FTS5 shadow tables)."""
    return not (name and (name in SEARCH_OBJECTS or name.startswith("trace_search_")))


from pilothouse.store import flow_tables as _flow_tables  # noqa: E402,F401  (flow tables, migration 0021)
from pilothouse.store import rag_tables as _rag_tables  # noqa: E402,F401  (RAG tables, migration 0020)
from pilothouse.store import ui_tables as _ui_tables  # noqa: E402,F401  (dashboard sessions, migration 0024)
