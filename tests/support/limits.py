"""Helpers for the budget and rate-limit end-to-end tests: a configuration that prices the local model,
a Redis that must be there (a missing one fails the test), and cleanup of a test's Redis keys."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import REDIS_URL

CHAT = "smollm2-135m"


def require_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except (RedisConnectionError, OSError) as exc:
        client.close()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}). Start it with 'redis-server --daemonize yes' "
            "or point PILOTHOUSE_TEST_REDIS_URL at a server."
        )
    return client


def new_prefix() -> str:
    return f"ph-test-{uuid.uuid4().hex[:12]}:"


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)


def priced_config(path: Path, *, prefix: str, price_per_mtok: Decimal, **limits: Any) -> Path:
    """A pilothouse.toml: the local chat model at `price_per_mtok` USD per 1M input and output tokens
    (local models cost nothing by default), limits under `prefix` in Redis, reloaded every 0.5 s."""
    lines = ["[limits]", f'redis_prefix = "{prefix}"', "definitions_ttl_s = 0.5"]
    lines += [f"{name} = {value}" for name, value in limits.items()]
    lines += [
        "",
        "[local]",
        "n_threads = 1",
        "",
        "[[models]]",
        f'name = "{CHAT}"',
        'kind = "chat"',
        "",
        "[[models.deployments]]",
        'provider = "local"',
        'model = "SmolLM2-135M-Instruct"',
        "context_window = 8192",
        f'input_price_per_mtok = "{price_per_mtok}"',
        f'output_price_per_mtok = "{price_per_mtok}"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
