"""One run of the features benchmark (bench/gateway_features.py): the upstream, then each target with its
features checked, measured with the hit/miss mix, soaked for memory, and what its features did read back.
Everything the run put in Redis is deleted at the end, whatever happens."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .common import BENCH_DIR, BUSY_THRESHOLD_PCT, CHAT_PATH, DIRECT_KEY, LITELLM_MASTER_KEY, BenchError
from .features import (
    LITELLM_PROBE_BUDGET_MODEL,
    LITELLM_PROBE_RPM_MODEL,
    RunNames,
    cleanup,
    connect_redis,
    count_keys,
    litellm_redis_values,
    pilothouse_budget,
    setup_pilothouse,
)
from .load import wait_until_quiet
from .measure import TargetResult, measure
from .memory import SoakResult, soak
from .mix import write_mix_lua
from .processes import CpuPlan, Processes, Server, plan_cpus
from .profile import profile_under_load
from .report import machine_info, result_json
from .targets import (
    check_completion,
    ensure_litellm,
    installed_version,
    pilothouse_key,
    start_litellm,
    start_pilothouse,
    start_upstream,
)
from .verify import check_cache, check_refused, upstream_count
from .wrk import require_wrk, wrk_version


@dataclass
class FeaturesRun:
    """What one run found, per target."""

    results: dict[str, TargetResult] = field(default_factory=dict)
    soaks: dict[str, SoakResult] = field(default_factory=dict)
    verified: dict[str, dict[str, str]] = field(default_factory=dict)  # feature -> what was seen
    after: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the features did during the run
    wrk_output: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # --profile: py-spy hot spots


@dataclass
class _Context:
    args: argparse.Namespace
    procs: Processes
    work: Path
    cpus: CpuPlan
    upstream: Server
    redis: redis.Redis
    names: RunNames
    run: FeaturesRun

    def count(self) -> int:
        return upstream_count(self.upstream)


def run_features(args: argparse.Namespace, procs: Processes, work: Path) -> tuple[dict[str, Any], FeaturesRun]:
    """Measure every target with its features on; the JSON-ready report and the results behind it."""
    require_wrk()
    cpus = plan_cpus(args.pin)
    machine = machine_info()
    versions: dict[str, str | None] = {"wrk": wrk_version(), "litellm": None, "pilothouse": None}
    if not args.skip_litellm:
        versions["litellm"] = ensure_litellm(Path(args.litellm_venv), BENCH_DIR / "requirements-litellm.txt")
        if installed_version(Path(args.litellm_venv) / "bin" / "python", "redis") is None:
            raise BenchError(f"{args.litellm_venv} has no `redis` package, which LiteLLM's Redis cache needs")
    if not args.skip_pilothouse:
        versions["pilothouse"] = installed_version(Path(args.pilothouse_bin).parent / "python", "pilothouse")
    client = connect_redis(args.redis_url)
    versions["redis"] = str(client.info("server").get("redis_version", "")) or None
    names = RunNames.new()
    run = FeaturesRun()
    try:
        upstream = start_upstream(procs, args.delay_ms, work, cpus.load)
        ctx = _Context(args, procs, work, cpus, upstream, client, names, run)
        check_completion(upstream, "direct", DIRECT_KEY)
        _measure(ctx, "direct", upstream, None, DIRECT_KEY, soak_it=False)
        if not args.skip_litellm:
            _litellm(ctx)
        if not args.skip_pilothouse:
            _pilothouse(ctx)
        procs.stop(upstream)
    finally:
        cleanup(client, names)
        client.close()
    direct = run.results["direct"]
    for name, r in run.results.items():
        if name != "direct":
            r.added_p50_ms = r.p50_ms - direct.p50_ms
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "versions": versions,
        "pinning": cpus.description,
        "connections": args.connections,
        "threads": args.threads,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "delay_ms": args.delay_ms,
        "new_share": args.new_share,
        "soak_s": args.soak,
        "soak_connections": args.soak_connections or args.connections,
        "redis_url": args.redis_url,
        "redis_tag": names.tag,
        "verified": run.verified,
        "after": run.after,
        "results": {k: result_json(v) for k, v in run.results.items()},
        "soaks": {k: v.to_json() for k, v in run.soaks.items()},
        "profiles": run.profiles,
        "wrk_output": run.wrk_output,
    }
    return report, run


def _measure(ctx: _Context, name: str, server: Server, startup: float | None, key: str, soak_it: bool) -> None:
    """The mixed measured run of one target and, with --soak, its memory soak (new requests only)."""
    args = ctx.args
    url = server.base_url + CHAT_PATH
    lua = write_mix_lua(ctx.work, name, key, args.new_share)
    result, raw = measure(name, url, lua, args, server, startup, ctx.cpus.load, ctx.procs, ctx.count)
    ctx.run.results[name], ctx.run.wrk_output[name] = result, raw
    if args.profile > 0 and name != "direct":
        ctx.run.profiles[name] = profile_under_load(name, server, url, lua, args, ctx.cpus.load)
    if not soak_it or args.soak <= 0:
        return
    server.mark_log()  # the soak reports its own error lines
    wait_until_quiet(ctx.procs.pgids(), args.wait_quiet, BUSY_THRESHOLD_PCT)
    new_only = write_mix_lua(ctx.work, name, key, 1.0)
    connections = args.soak_connections or args.connections
    before = ctx.count()
    pgids = ctx.procs.pgids()
    outcome = soak(
        name, server, url, new_only, args.soak, connections, args.threads, args.soak_interval, ctx.cpus.load, pgids
    )
    outcome.upstream_calls = ctx.count() - before
    ctx.run.soaks[name] = outcome


def _litellm(ctx: _Context) -> None:
    names = ctx.names
    values = litellm_redis_values(ctx.args.redis_url, names)
    server, startup = start_litellm(
        ctx.procs, ctx.args, ctx.work, ctx.upstream.port, ctx.cpus.gateway, "litellm_features.yaml", values
    )
    key = LITELLM_MASTER_KEY
    check_completion(server, "litellm", key)
    ctx.run.verified["litellm"] = {
        "cache": check_cache("litellm", server, key, ctx.count, lambda h: bool(h.get("x-litellm-cache-key"))),
        "rate limit": check_refused(
            "litellm", "rate limit", server, key, LITELLM_PROBE_RPM_MODEL, ("rate limit", "rpm")
        ),
        "budget": check_refused("litellm", "budget", server, key, LITELLM_PROBE_BUDGET_MODEL, ("budget",)),
    }
    server.mark_log()  # the refusals above are logged as errors; count only the run's
    _measure(ctx, "litellm", server, startup, key, soak_it=True)
    model_id = names.litellm_model_id
    ctx.run.after["litellm"] = {
        "cache_keys": count_keys(ctx.redis, f"{names.litellm_prefix}:*"),
        "budget_spent_usd": _redis_float(ctx.redis, f"deployment_spend:{model_id}:1d"),
        "rpm_counted_last_minutes": _redis_sum(ctx.redis, f"{model_id}:*:rpm:*"),
    }
    ctx.procs.stop(server)


def _pilothouse(ctx: _Context) -> None:
    prefix = ctx.names.pilothouse_prefix
    server, startup = start_pilothouse(
        ctx.procs,
        ctx.args,
        ctx.work,
        ctx.upstream.port,
        ctx.cpus.gateway,
        "pilothouse.features.toml",
        {"REDIS_PREFIX": prefix},
        {"PILOTHOUSE_REDIS_URL": ctx.args.redis_url},
    )
    admin = pilothouse_key(ctx.work)
    keys = setup_pilothouse(server.base_url, admin)
    key = keys.bench.secret
    check_completion(server, "pilothouse", key)
    hit: Callable[[dict[str, str]], bool] = lambda h: h.get("x-pilothouse-cache") == "hit"  # noqa: E731
    ctx.run.verified["pilothouse"] = {
        "cache": check_cache("pilothouse", server, key, ctx.count, hit),
        "rate limit": check_refused(
            "pilothouse", "rate limit", server, keys.probe_rpm.secret, None, ("rate_limit_exceeded",)
        ),
        "budget": check_refused("pilothouse", "budget", server, keys.probe_budget.secret, None, ("budget_exceeded",)),
    }
    server.mark_log()
    _measure(ctx, "pilothouse", server, startup, key, soak_it=True)
    budget = pilothouse_budget(server.base_url, admin, keys.budget_id)
    ctx.run.after["pilothouse"] = {
        "cache_keys": count_keys(ctx.redis, f"{prefix}:cache:*"),
        "budget_spent_usd": float(budget["spent_usd"]),
        "budget_reserved_usd": float(budget["reserved_usd"]),
        "rpm_window_entries": int(ctx.redis.zcard(f"{prefix}:limits:rate:{keys.limit_id}:rpm")),
    }
    ctx.procs.stop(server)


def _redis_float(client: redis.Redis, key: str) -> float | None:
    value = client.get(key)
    return None if value is None else float(value)


def _redis_sum(client: redis.Redis, pattern: str) -> float:
    return sum(float(client.get(k) or 0) for k in client.scan_iter(match=pattern, count=2000))
