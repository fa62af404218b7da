"""One benchmark run: the upstream, then each target measured in turn, then the checks and the report data."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, CHAT_PATH, DIRECT_KEY, LITELLM_MASTER_KEY, log
from .measure import TargetResult, measure
from .processes import Processes, Server, plan_cpus
from .profile import profile_under_load
from .report import GUARDED, evaluate, machine_info, result_json
from .shapes import DEFAULT_SHAPE, SHAPES
from .targets import (
    check_completion,
    ensure_litellm,
    installed_version,
    pilothouse_key,
    push_policies,
    start_litellm,
    start_pilothouse,
    start_upstream,
)
from .wrk import require_wrk, write_lua, wrk_version


def run(args: argparse.Namespace, procs: Processes, work: Path) -> tuple[dict[str, Any], dict[str, TargetResult]]:
    """Measure every target; the JSON-ready report and the results behind it."""
    require_wrk()
    cpus = plan_cpus(args.pin)

    machine = machine_info()
    versions: dict[str, str | None] = {"wrk": wrk_version(), "litellm": None, "pilothouse": None}
    if not args.skip_litellm:
        versions["litellm"] = ensure_litellm(Path(args.litellm_venv), BENCH_DIR / "requirements-litellm.txt")
    if not args.skip_pilothouse:
        versions["pilothouse"] = installed_version(Path(args.pilothouse_bin).parent / "python", "pilothouse")

    results: dict[str, TargetResult] = {}
    raw_outputs: dict[str, str] = {}
    profiles: dict[str, dict[str, Any]] = {}

    def bench(name: str, server: Server, startup: float | None, key: str) -> tuple[str, Path]:
        check_completion(server, name, key)
        lua = write_lua(work, name, key)
        url = server.base_url + CHAT_PATH
        results[name], raw_outputs[name] = measure(name, url, lua, args, server, startup, cpus.load, procs)
        return url, lua

    def bench_gateway(name: str, server: Server, startup: float, key: str) -> None:
        url, lua = bench(name, server, startup, key)
        if args.profile > 0:
            profiles[name] = profile_under_load(name, server, url, lua, args, cpus.load)
        procs.stop(server)

    upstream = start_upstream(procs, args.delay_ms, work, cpus.load)
    # For the direct run the CPU column is the upstream's own CPU per request.
    bench("direct", upstream, None, DIRECT_KEY)

    if not args.skip_litellm:
        server, startup = start_litellm(procs, args, work, upstream.port, cpus.gateway)
        bench_gateway("litellm", server, startup, LITELLM_MASTER_KEY)

    if not args.skip_pilothouse:
        server, startup = start_pilothouse(procs, args, work, upstream.port, cpus.gateway)
        bench_gateway("pilothouse", server, startup, pilothouse_key(work))

    policies = list(getattr(args, "policy", None) or [])
    if policies and not args.skip_pilothouse:
        guarded = work / "guards"  # a second, fresh server: its own data directory
        guarded.mkdir()
        server, startup = start_pilothouse(procs, args, guarded, upstream.port, cpus.gateway)
        key = pilothouse_key(guarded)
        push_policies(server, key, policies)
        bench_gateway(GUARDED, server, startup, key)

    procs.stop(upstream)

    direct = results["direct"]
    for name, r in results.items():
        if name != "direct":
            r.added_p50_ms = r.p50_ms - direct.p50_ms
    shape_name = getattr(args, "shape", DEFAULT_SHAPE)
    checks = evaluate(results, SHAPES[shape_name])
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "versions": versions,
        "pinning": cpus.description,
        "shape": shape_name,
        "connections": args.connections,
        "threads": args.threads,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "delay_ms": args.delay_ms,
        "client_timeout_s": args.timeout,
        "results": {k: result_json(v) for k, v in results.items()},
        "checks": checks,
        "all_met": all(c["met"] for c in checks) if checks else None,
        "profiles": profiles,
        "wrk_output": raw_outputs,
    }
    return report, results


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    """A temporary directory for configs, logs and data; kept with --keep-logs or when the run fails."""
    path = Path(tempfile.mkdtemp(prefix="pilothouse-bench-"))
    try:
        yield path
    except BaseException:
        log(f"logs and configs kept in {path}")
        raise
    if keep:
        log(f"logs and configs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)
