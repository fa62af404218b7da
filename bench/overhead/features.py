"""Caching, budgets and rate limits switched on in both gateways, the same way: what each gateway's
configuration gets, the Pilothouse keys with their budget and limits (created through its API), and the
Redis keys of a run (under prefixes unique to it, deleted afterwards).

Both gateways keep their cache and their counters in the same Redis:

| feature | Pilothouse | LiteLLM |
| --- | --- | --- |
| response cache | `[cache] backend = "redis"` (exact) | `litellm_settings.cache`, `cache_params.type: redis` |
| budget | a hard daily budget on the key (reserved, settled) | a deployment budget (`max_budget`, `budget_duration`) |
| rate limit | rpm + tpm on the key (sliding windows) | rpm + tpm on the deployment, `enforce_model_rate_limits` |

The limits are far above what a run sends, so nothing is refused; a tiny budget and rpm on side subjects
(probe keys, probe model groups) show that each gateway does enforce them (verify.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis

from .common import BenchError, log
from .targets import http_request

# Per-run limits, far above what wrk sends (~1,500 req/s is 90,000 requests a minute).
BUDGET_USD = "1000000"
RPM = 100_000_000
TPM = 10_000_000_000
# The probes' limits: the second call must be refused.
PROBE_RPM = 1
PROBE_BUDGET_USD = "0.00001"  # below one bench call's cost ($0.000018 at the template's prices)

LITELLM_PROBE_RPM_MODEL = "bench-probe-rpm"
LITELLM_PROBE_BUDGET_MODEL = "bench-probe-budget"


@dataclass(frozen=True)
class RunNames:
    """Names unique to one run, so that runs (and other users of the Redis) never share keys."""

    tag: str
    pilothouse_prefix: str  # Pilothouse's cache and limits prefixes start with it
    litellm_prefix: str  # LiteLLM's cache namespace
    litellm_model_id: str  # LiteLLM's router counters are named after the deployment's id

    @classmethod
    def new(cls) -> RunNames:
        tag = uuid.uuid4().hex[:10]
        return cls(tag, f"pilothouse-bench-{tag}", f"litellm-bench-{tag}", f"bench-{tag}")


def connect_redis(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {url} does not answer ({exc}); start it or pass --redis-url") from exc
    return client


def litellm_redis_values(url: str, names: RunNames) -> dict[str, str]:
    """The placeholders of bench/litellm_features.yaml."""
    parts = urlsplit(url)
    if parts.path.strip("/") not in ("", "0"):
        log(f"warning: LiteLLM is configured with host and port only, so it uses Redis database 0, not {url}")
    return {
        "REDIS_HOST": parts.hostname or "127.0.0.1",
        "REDIS_PORT": str(parts.port or 6379),
        "REDIS_PREFIX": names.litellm_prefix,
        "MODEL_ID": names.litellm_model_id,
    }


def delete_keys(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching `pattern` (SCAN + UNLINK); how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def count_keys(client: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=2000))


def cleanup(client: redis.Redis, names: RunNames) -> None:
    """Remove what the run left in Redis: both gateways' caches and counters."""
    total = 0
    for pattern in (f"{names.pilothouse_prefix}:*", f"{names.litellm_prefix}:*", f"*{names.litellm_model_id}*"):
        try:
            total += delete_keys(client, pattern)
        except redis.RedisError as exc:
            log(f"could not delete Redis keys {pattern}: {exc}")
    log(f"deleted {total} Redis keys of this run")


@dataclass(frozen=True)
class PilothouseKey:
    id: str
    secret: str


@dataclass(frozen=True)
class PilothouseFeatures:
    """The keys the Pilothouse run uses: the measured one and the two probes, each with its budget/limits."""

    bench: PilothouseKey
    budget_id: str
    limit_id: str
    probe_rpm: PilothouseKey
    probe_budget: PilothouseKey


def _api(base_url: str, path: str, admin_key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, raw = http_request(base_url + path, body, key=admin_key, timeout=30.0)
    if status not in (200, 201):
        raise BenchError(f"pilothouse: {'POST' if body else 'GET'} {path} answered {status}: {raw[:300]!r}")
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise BenchError(f"pilothouse: {path} did not answer a JSON object")
    return data


def _key(base_url: str, admin_key: str, name: str) -> PilothouseKey:
    data = _api(base_url, "/api/keys", admin_key, {"name": name, "role": "service"})
    return PilothouseKey(str(data["id"]), str(data["secret"]))


def setup_pilothouse(base_url: str, admin_key: str) -> PilothouseFeatures:
    """A service key with a hard daily budget and rpm + tpm limits, and the two probe keys."""
    bench = _key(base_url, admin_key, "bench")
    budget = _api(
        base_url,
        "/api/budgets",
        admin_key,
        {"scope": "key", "subject": bench.id, "usd": BUDGET_USD, "period": "day", "mode": "hard"},
    )
    limit = _api(base_url, "/api/limits", admin_key, {"scope": "key", "subject": bench.id, "rpm": RPM, "tpm": TPM})
    probe_rpm = _key(base_url, admin_key, "probe-rpm")
    _api(base_url, "/api/limits", admin_key, {"scope": "key", "subject": probe_rpm.id, "rpm": PROBE_RPM})
    probe_budget = _key(base_url, admin_key, "probe-budget")
    _api(
        base_url,
        "/api/budgets",
        admin_key,
        {"scope": "key", "subject": probe_budget.id, "usd": PROBE_BUDGET_USD, "period": "day", "mode": "hard"},
    )
    log(f"pilothouse: key {bench.id} with a hard daily budget of ${BUDGET_USD} and rpm {RPM:,}, tpm {TPM:,}")
    return PilothouseFeatures(bench, str(budget["id"]), str(limit["id"]), probe_rpm, probe_budget)


def pilothouse_budget(base_url: str, admin_key: str, budget_id: str) -> dict[str, Any]:
    """The budget's row from GET /api/budgets: spent_usd, reserved_usd, ..."""
    for row in _api(base_url, "/api/budgets", admin_key)["data"]:
        if row.get("id") == budget_id:
            return dict(row)
    raise BenchError(f"pilothouse: budget {budget_id} is not listed")
