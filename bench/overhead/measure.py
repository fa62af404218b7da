"""Measuring one target: a warm-up and a measured wrk run, again while other work skews the numbers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .common import BUSY_THRESHOLD_PCT, log
from .load import cpu_snapshot, group_cpu_seconds, other_load_pct, wait_until_quiet
from .processes import Processes, Server
from .wrk import WrkResult, run_wrk


@dataclass
class TargetResult:
    target: str
    url: str
    rps: float
    p50_ms: float
    p99_ms: float
    added_p50_ms: float | None
    errors: int
    cpu_ms_per_request: float | None
    startup_s: float | None
    wrk: WrkResult
    log_errors: int = 0
    log_error_sample: str | None = None
    other_load_before_pct: float | None = None
    other_load_during_pct: float | None = None
    upstream_calls: int | None = None  # chat completions the upstream received during the measured run


# Reads a counter that only grows (the upstream's chat completions), or None when it cannot.
Counter = Callable[[], int | None]


def measure(
    name: str,
    url: str,
    lua: Path,
    args: argparse.Namespace,
    server: Server,
    startup_s: float | None,
    wrk_cpus: set[int] | None,
    procs: Processes,
    upstream_counter: Counter | None = None,
) -> tuple[TargetResult, str]:
    """Warm up and measure one target; again (up to --retries) while other work skews the run.

    `server` is the process that answers `url`: its CPU time per request is the target's (for the direct
    run, the upstream's). Of several attempts, the one with the least other load counts; every attempt's
    numbers are logged. `upstream_counter`, when given, is read before and after the measured run: how
    many calls reached the upstream (the rest a gateway answered from its cache).
    """
    best: tuple[TargetResult, str] | None = None
    for attempt in range(args.retries + 1):
        if attempt:
            log(f"{name}: measuring again ({attempt}/{args.retries}), other work skewed the last run")
        outcome = _measure_once(name, url, lua, args, server, startup_s, wrk_cpus, procs, upstream_counter)
        busy = outcome[0].other_load_during_pct
        if best is None or (busy or 0.0) < (best[0].other_load_during_pct or 0.0):
            best = outcome
        if busy is None or busy <= BUSY_THRESHOLD_PCT:
            break
    assert best is not None
    return best


def _measure_once(
    name: str,
    url: str,
    lua: Path,
    args: argparse.Namespace,
    server: Server,
    startup_s: float | None,
    wrk_cpus: set[int] | None,
    procs: Processes,
    upstream_counter: Counter | None,
) -> tuple[TargetResult, str]:
    busy_before = wait_until_quiet(procs.pgids(), args.wait_quiet, BUSY_THRESHOLD_PCT)
    log(f"{name}: warm-up {args.warmup:g} s")
    warm, _ = run_wrk(url, lua, args.warmup, args.connections, args.threads, wrk_cpus, args.timeout)
    if warm.errors:
        log(f"{name}: warm-up had {warm.errors} errors ({warm.non_2xx} non-2xx, {warm.socket_errors})")
    server.ensure_alive(name, "the warm-up")
    log(f"{name}: measuring {args.duration:g} s at {args.connections} connections")
    machine_before = cpu_snapshot(procs.pgids())
    cpu_before = group_cpu_seconds(server.proc.pid)
    calls_before = upstream_counter() if upstream_counter else None
    result, raw = run_wrk(url, lua, args.duration, args.connections, args.threads, wrk_cpus, args.timeout)
    cpu_after = group_cpu_seconds(server.proc.pid)
    calls_after = upstream_counter() if upstream_counter else None
    upstream_calls = None if calls_before is None or calls_after is None else calls_after - calls_before
    busy_during = other_load_pct(machine_before, cpu_snapshot(procs.pgids()))
    if busy_during is not None and busy_during > BUSY_THRESHOLD_PCT:
        log(f"warning: other processes used {busy_during:.0f}% of the CPUs during the {name} run")
    server.ensure_alive(name, "the run")
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and result.requests:
        cpu_ms = (cpu_after - cpu_before) * 1000.0 / result.requests
    log(f"{name}: {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms")
    if upstream_calls is not None and result.requests:
        log(f"{name}: {upstream_calls} of {result.requests} requests reached the upstream")
    if result.errors:
        log(f"{name}: {result.errors} errors ({result.non_2xx} non-2xx, sockets {result.socket_errors})")
    log_errors, log_sample = server.log_errors()
    if log_errors:
        log(f"{name}: its log has {log_errors} error lines, the first: {log_sample}")
    return (
        TargetResult(
            target=name,
            url=url,
            rps=result.rps,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            added_p50_ms=None,
            errors=result.errors,
            cpu_ms_per_request=cpu_ms,
            startup_s=startup_s,
            wrk=result,
            log_errors=log_errors,
            log_error_sample=log_sample,
            other_load_before_pct=busy_before,
            other_load_during_pct=busy_during,
            upstream_calls=upstream_calls,
        ),
        raw,
    )
