"""Settings from `pilothouse.toml` and environment variables.

Precedence: explicit arguments (CLI flags) > environment (`PILOTHOUSE_*`) > `pilothouse.toml` > defaults.
The model catalog maps public model names to one or more provider deployments.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    timeout_s: float = Field(default=600.0, gt=0, description="Read timeout for one upstream call.")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict, description="Provider-specific options.")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class ModelEntry(BaseModel):
    """A public model name and the deployments behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["chat", "embedding"] = "chat"
    deployments: list[Deployment] = Field(min_length=1)

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


class Settings(BaseModel):
    """Everything a Pilothouse process needs. Build with `load_settings()`."""

    model_config = ConfigDict(extra="forbid")

    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Path(".pilothouse")
    database_url: str | None = None
    redis_url: str | None = None
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    capture_content: bool = Field(default=True, description="Store prompts and completions on spans.")
    key_cache_ttl_s: float = Field(default=2.0, ge=0)
    trace_batch_max: int = Field(default=256, gt=0)
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    models: list[ModelEntry] = Field(default_factory=list)
    include_default_models: bool = True

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


_ENV_FIELDS: dict[str, str] = {
    "PILOTHOUSE_HOST": "host",
    "PILOTHOUSE_PORT": "port",
    "PILOTHOUSE_DATA_DIR": "data_dir",
    "PILOTHOUSE_DATABASE_URL": "database_url",
    "PILOTHOUSE_REDIS_URL": "redis_url",
    "PILOTHOUSE_MAX_BODY_BYTES": "max_body_bytes",
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
