"""Settings from `pilothouse.toml` and environment variables.

Precedence: explicit arguments (CLI flags) > environment (`PILOTHOUSE_*`) > `pilothouse.toml` > defaults.
The model catalog maps public model names to one or more provider deployments.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PORT = 7300
DEFAULT_HOST = "127.0.0.1"
LOCAL_CHAT_MODEL = "smollm2-135m"
LOCAL_EMBEDDING_MODEL = "all-minilm-l6-v2"


class ConfigError(Exception):
    """The configuration file or environment is invalid; the message says what to fix."""


class Deployment(BaseModel):
    """One place a public model name can be served from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(description="Provider wire format: local, openai, anthropic, fake (or a plugin).")
    model: str = Field(description="The model id the upstream expects.")
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, description="Environment variable holding the upstream key.")
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    input_price_per_mtok: Decimal | None = Field(default=None, ge=0, description="USD per 1M input tokens.")
    output_price_per_mtok: Decimal | None = Field(default=None, ge=0)
    cached_input_price_per_mtok: Decimal | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, gt=0)
    name: str | None = Field(
        default=None, description="Label in traces and logs (default: provider/model, #index when repeated)."
    )
    timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="Read timeout: the longest gap between two reads of one upstream call (a retryable `timeout`).",
    )
    connect_timeout_s: float = Field(default=10.0, gt=0)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Provider-specific options; `max_connections` sizes the upstream pool (default 1000, 0: no limit).",
    )

    @field_validator("options")
    @classmethod
    def _check_max_connections(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The pool size caps concurrent calls, so a typo (a string, a negative) must fail at load, not at traffic."""
        value = options.get("max_connections")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"options.max_connections must be a whole number >= 0 (0: no limit), not {value!r}")
        return options

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class ModelEntry(BaseModel):
    """A public model name and the deployments behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["chat", "embedding"] = "chat"
    deployments: list[Deployment] = Field(min_length=1)
    fallbacks: list[str] = Field(
        default_factory=list, description="Other public model names tried in order when every deployment fails."
    )
    context_window_fallbacks: list[str] | None = Field(
        default=None, description="Models tried on context-window overflow (default: `fallbacks`)."
    )
    call_deadline_s: float | None = Field(
        default=None, gt=0, description="This model's overall call deadline (default: routing.call_deadline_s)."
    )

    @field_validator("name")
    @classmethod
    def _no_prompt_prefix(cls, value: str) -> str:
        if value.startswith("prompt:"):
            raise ValueError("model names may not start with 'prompt:' (reserved for prompt references)")
        return value


def default_catalog() -> list[ModelEntry]:
    """The bundled local models: ready offline on every install."""
    return [
        ModelEntry(
            name=LOCAL_CHAT_MODEL,
            kind="chat",
            deployments=[Deployment(provider="local", model="SmolLM2-135M-Instruct", context_window=8192)],
        ),
        ModelEntry(
            name=LOCAL_EMBEDDING_MODEL,
            kind="embedding",
            deployments=[Deployment(provider="local", model="all-MiniLM-L6-v2", context_window=256)],
        ),
    ]


class LocalModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_ctx: int = Field(default=8192, gt=0, description="Context size llama.cpp allocates.")
    n_threads: int | None = Field(default=None, gt=0, description="CPU threads for generation (default: cores).")
    preload: bool = Field(default=True, description="Load the local models at start, before /readyz is ready.")


class LimitSettings(BaseModel):
    """Budgets, rate limits and loop guards (docs/cost-control.md). Definitions live in the store."""

    model_config = ConfigDict(extra="forbid")

    definitions_ttl_s: float = Field(default=2.0, gt=0, description="How often budget/limit definitions reload.")
    reservation_ttl_s: float = Field(
        default=900.0, gt=0, description="A reservation a crashed replica never settled is released after this."
    )
    redis_prefix: str = Field(default="pilothouse:", description="Prefix of the Redis keys of limits and budgets.")
    run_max_calls: int | None = Field(default=200, ge=1, description="Calls per run (x-pilothouse-run-id).")
    run_max_tokens: int | None = Field(default=2_000_000, ge=1, description="Input + output tokens per run.")
    run_max_cost_usd: Decimal | None = Field(default=None, ge=0, description="Cost per run; None: no cap.")
    run_max_repeats: int | None = Field(
        default=5, ge=1, description="Identical calls (same request hash) allowed per run; None: no check."
    )
    run_ttl_s: float = Field(default=86_400.0, gt=0, description="Run counters expire this long after last use.")
    settle_retry_s: float = Field(
        default=1.0, gt=0, description="First retry of a settle the limit store did not take; doubles up to 60 s."
    )
    recovery_interval_s: float = Field(
        default=10.0, ge=0, description="How often calls dead replicas left in flight are sought; 0: at start only."
    )
    reconcile_interval_s: float = Field(
        default=60.0, ge=0, description="How often Redis budget counters are reconciled with the traces; 0: off."
    )


class RoutingSettings(BaseModel):
    """Retries, backoff and circuit breaking across deployments and fallbacks (docs/cost-control.md#routing)."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(default=0, ge=0, le=20, description="Extra calls per model after each deployment had one.")
    max_attempts: int = Field(default=10, ge=1, description="Upstream calls per request, fallbacks included.")
    backoff_base_s: float = Field(default=0.25, ge=0, description="First retry waits up to this (full jitter).")
    backoff_max_s: float = Field(default=8.0, ge=0, description="Cap of one backoff wait.")
    max_retry_after_s: float = Field(
        default=10.0, ge=0, description="Longest upstream Retry-After waited for; longer moves to another deployment."
    )
    breaker_failures: int = Field(default=5, ge=0, description="Consecutive failures that open a circuit; 0: off.")
    breaker_cooldown_s: float = Field(default=30.0, gt=0, description="How long an open circuit skips a deployment.")
    latency_alpha: float = Field(default=0.2, gt=0, le=1, description="Weight of the newest latency in the EWMA.")
    latency_sensitivity: float = Field(default=1.0, ge=0, description="0: weights only; 1: share ~ 1/latency.")
    call_deadline_s: float = Field(
        default=300.0,
        gt=0,
        description="Overall time a request's upstream work may take: every attempt, backoff and fallback, and a "
        "stream to its end (504 deadline_exceeded after); bounds upstreams that trickle or send only keep-alives.",
    )


class SemanticCacheSettings(BaseModel):
    """The semantic cache: the last user message compared by meaning (docs/caching.md#semantic-cache)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Semantic lookups for every cacheable request (else per header).")
    threshold: float = Field(
        default=0.6, gt=0, le=1, description="Least cosine similarity of a hit (tuned: docs/caching.md)."
    )
    contrast_checks: bool = Field(
        default=True, description="Refuse hits that differ in negation, opposites, numbers, dates, units, names."
    )
    candidates: int = Field(default=4, ge=1, le=32, description="Best matches put to the contrast checks.")
    max_entries: int = Field(default=200_000, ge=1, description="Vectors held per process; LRU partitions dropped.")
    max_entries_per_partition: int = Field(default=100_000, ge=1, description="Oldest entries dropped beyond this.")
    sync_batch: int = Field(default=512, ge=1, description="Redis, SQLite: new vectors read per lookup.")

    @model_validator(mode="before")
    @classmethod
    def _renamed_guards(cls, data: Any) -> Any:
        """`guards` is the old name of `contrast_checks` (the word is kept for runtime security guards)."""
        if not isinstance(data, dict) or "guards" not in data:
            return data
        if "contrast_checks" in data:
            raise ValueError("give contrast_checks only; guards is its old name")
        warnings.warn(
            "cache.semantic.guards is deprecated and will be removed: rename it to cache.semantic.contrast_checks",
            FutureWarning,
            stacklevel=2,
        )
        renamed = {k: v for k, v in data.items() if k != "guards"}
        renamed["contrast_checks"] = data["guards"]
        return renamed


class CacheSettings(BaseModel):
    """Exact and semantic response caching (docs/caching.md). Off by default."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    backend: Literal["auto", "memory", "sqlite", "redis"] = Field(
        default="auto",
        description="auto: Redis when redis_url is set (shared by replicas), else memory; sqlite: data_dir/cache.db.",
    )
    ttl_s: float = Field(default=3600.0, gt=0, description="Entry lifetime; x-pilothouse-cache-ttl may lower it.")
    cache_sampled: bool = Field(
        default=False, description="Cache requests with temperature > 0 (or none) without x-pilothouse-cache: force."
    )
    bypass_key_ids: list[str] = Field(default_factory=list, description="API key ids whose calls are never cached.")
    redis_prefix: str = Field(default="pilothouse:cache:", description="Prefix of the cache's Redis keys.")
    max_entries: int = Field(default=50_000, ge=1, description="Memory/SQLite: entries kept (LRU / soonest expiry).")
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1, description="Memory backend: total size of entries.")
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1, description="Larger responses are not cached.")
    semantic: SemanticCacheSettings = Field(default_factory=SemanticCacheSettings)


class AuditSettings(BaseModel):
    """Signed checkpoints of the audit chain (docs/audit.md)."""

    model_config = ConfigDict(extra="forbid")

    signing_key_path: Path | None = Field(
        default=None,
        description="Ed25519 key signing checkpoints, created 0600 if absent (default: "
        "data_dir/audit-signing-key.pem); keep it outside the database and its backups.",
    )
    checkpoint_log_path: Path | None = Field(
        default=None,
        description="Append-only file of every checkpoint (default: audit-checkpoints.jsonl beside the key).",
    )
    checkpoint_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often the chain head is checkpointed (and at shutdown); 0: at shutdown only.",
    )
    trusted_public_keys: list[Path] = Field(
        default_factory=list, description="PEM public keys of rotated-out signing keys whose checkpoints stay valid."
    )


class TraceSettings(BaseModel):
    """Trace retention (docs/audit.md#trace-retention)."""

    model_config = ConfigDict(extra="forbid")

    retention_days: float | None = Field(
        default=None, gt=0, description="Delete trace content (messages, outputs) older than this; numbers are kept."
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="How often the retention purge runs.")


class OtelSettings(BaseModel):
    """OpenTelemetry export of our traces over OTLP/HTTP (docs/opentelemetry.md). Off without an endpoint."""

    model_config = ConfigDict(extra="forbid")

    export_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Full OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces; None: no export.",
    )
    export_headers: dict[str, str] = Field(default_factory=dict, description="Sent with every export (auth).")
    service_name: str = Field(default="pilothouse", min_length=1, description="The exported resource's service.name.")
    batch_max: int = Field(default=512, ge=1, description="Spans per export request (whole traces).")
    queue_max: int = Field(default=10_000, ge=1, description="Spans waiting for export; more are dropped, counted.")
    retries: int = Field(default=5, ge=0, le=20, description="Retries of a retryable refusal (429, 502-504, network).")
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one export request.")


class Settings(BaseModel):
    """Everything a Pilothouse process needs. Build with `load_settings()`."""

    model_config = ConfigDict(extra="forbid")

    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Path(".pilothouse")
    database_url: str | None = None
    redis_url: str | None = None
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_json_depth: int = Field(
        default=64, ge=8, le=128, description="Nesting of objects and arrays allowed in a JSON request body (400)."
    )
    body_read_timeout_s: float = Field(
        default=30.0, gt=0, description="Time a client has to send its whole request body (408 after)."
    )
    capture_content: bool = Field(default=True, description="Store prompts and completions on spans.")
    key_cache_ttl_s: float = Field(default=2.0, ge=0)
    trace_batch_max: int = Field(default=256, gt=0)
    canary_check_interval_s: float = Field(default=30.0, ge=0, description="Canary rollback checks; 0: off.")
    monitor_interval_s: float = Field(
        default=60.0, ge=0, description="Monitor alert rules and online evaluation (docs/monitors.md); 0: off."
    )
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    traces: TraceSettings = Field(default_factory=TraceSettings)
    otel: OtelSettings = Field(default_factory=OtelSettings)
    models: list[ModelEntry] = Field(default_factory=list)
    include_default_models: bool = True

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> Settings:
        catalog = self.catalog()
        for entry in catalog.values():
            for name in [*entry.fallbacks, *(entry.context_window_fallbacks or [])]:
                target = catalog.get(name)
                if target is None or target.kind != entry.kind or name == entry.name:
                    why = "is not in the catalog" if target is None else "is the model itself or of another kind"
                    raise ValueError(f"model {entry.name!r} lists fallback {name!r}, which {why}")
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pilothouse.db').resolve()}"

    def catalog(self) -> dict[str, ModelEntry]:
        """Public name -> entry; configured models override bundled ones of the same name."""
        entries: dict[str, ModelEntry] = {}
        if self.include_default_models:
            entries.update({m.name: m for m in default_catalog()})
        entries.update({m.name: m for m in self.models})
        return entries

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin_key"

    @property
    def audit_key_path(self) -> Path:
        return self.audit.signing_key_path or self.data_dir / "audit-signing-key.pem"

    @property
    def audit_checkpoint_log_path(self) -> Path:
        return self.audit.checkpoint_log_path or self.audit_key_path.parent / "audit-checkpoints.jsonl"


_ENV_FIELDS: dict[str, str] = {
    "PILOTHOUSE_HOST": "host",
    "PILOTHOUSE_PORT": "port",
    "PILOTHOUSE_DATA_DIR": "data_dir",
    "PILOTHOUSE_DATABASE_URL": "database_url",
    "PILOTHOUSE_REDIS_URL": "redis_url",
    "PILOTHOUSE_MAX_BODY_BYTES": "max_body_bytes",
    "PILOTHOUSE_MAX_JSON_DEPTH": "max_json_depth",
    "PILOTHOUSE_BODY_READ_TIMEOUT_S": "body_read_timeout_s",
    "PILOTHOUSE_CAPTURE_CONTENT": "capture_content",
}


def config_path(explicit: Path | None = None) -> Path | None:
    """The configuration file in use: explicit, `PILOTHOUSE_CONFIG`, or `./pilothouse.toml` if present."""
    if explicit is not None:
        return explicit
    env = os.environ.get("PILOTHOUSE_CONFIG")
    if env:
        return Path(env)
    local = Path("pilothouse.toml")
    return local if local.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file, apply `PILOTHOUSE_*` variables, then non-None `overrides`."""
    raw: dict[str, Any] = {}
    file = config_path(path)
    if file is not None:
        if not file.exists():
            raise ConfigError(f"configuration file {file} does not exist")
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from exc
    for env, name in _ENV_FIELDS.items():
        if env in os.environ:
            raw[name] = os.environ[env]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        where = f" in {file}" if file else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc
