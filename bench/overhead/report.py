"""The outcome of a run: Pilothouse's ratios against its targets, the table, the JSON form of a result and
what it is recorded with (the machine, the source tree)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from .common import BUSY_THRESHOLD_PCT, REPO_DIR
from .measure import TargetResult
from .shapes import DEFAULT_SHAPE, SHAPES, Shape

# Targets for Pilothouse (the ratio to direct is the shape's: bench/overhead/shapes.py).
MIN_RPS_VS_LITELLM = 5.0
MAX_ADDED_P50_VS_LITELLM = 0.25
MAX_CLIENT_TIMEOUTS = 0


GUARDED = "pilothouse_guards"
"""The result of Pilothouse with the `--policy` files pushed (guards on every call)."""
MIN_GUARDED_RPS_VS_DIRECT = 0.5
"""Issue 12: guards on must keep the gateway at least 0.5x direct throughput."""


def evaluate(results: dict[str, TargetResult], shape: Shape = SHAPES[DEFAULT_SHAPE]) -> list[dict[str, Any]]:
    direct = results.get("direct")
    litellm = results.get("litellm")
    pilot = results.get("pilothouse")
    checks: list[dict[str, Any]] = []
    pilot_errors = bool(pilot and pilot.errors)

    def check(name: str, value: float | None, op: str, threshold: float, note: str = "") -> None:
        if value is None:
            met: bool | None = None
        elif pilot_errors:
            met = False
            note = note or "Pilothouse had errors during the run"
        else:
            met = value >= threshold if op == ">=" else value <= threshold
        checks.append({"check": name, "value": value, "op": op, "threshold": threshold, "met": met, "note": note})

    if pilot and direct:
        ratio = pilot.rps / direct.rps if direct.rps else None
        check("pilothouse_rps / direct_rps", ratio, ">=", shape.min_rps_vs_direct)
    guarded = results.get(GUARDED)
    if guarded and direct:
        ratio = guarded.rps / direct.rps if direct.rps else None
        met = None if ratio is None else ratio >= MIN_GUARDED_RPS_VS_DIRECT and not guarded.errors
        note = "Pilothouse with guards had errors during the run" if guarded.errors else ""
        checks.append(
            {
                "check": "pilothouse_guards_rps / direct_rps",
                "value": ratio,
                "op": ">=",
                "threshold": MIN_GUARDED_RPS_VS_DIRECT,
                "met": met,
                "note": note,
            }
        )
    if pilot and not shape.litellm_checks:
        # Long calls: a client that gave up is the failure this shape looks for, so it is a target of its own.
        checks.append(
            {
                "check": "pilothouse client timeouts",
                "value": float(pilot.wrk.timeouts),
                "op": "<=",
                "threshold": MAX_CLIENT_TIMEOUTS,
                "met": pilot.wrk.timeouts <= MAX_CLIENT_TIMEOUTS,
                "note": "",
            }
        )
    if pilot and litellm and shape.litellm_checks:
        ratio = pilot.rps / litellm.rps if litellm.rps else None
        check("pilothouse_rps / litellm_rps", ratio, ">=", MIN_RPS_VS_LITELLM)
        added_ratio, note = None, "LiteLLM added no median latency; the ratio is undefined"
        if pilot.added_p50_ms is not None and litellm.added_p50_ms is not None and litellm.added_p50_ms > 0:
            added_ratio, note = pilot.added_p50_ms / litellm.added_p50_ms, ""
        check("pilothouse_added_p50 / litellm_added_p50", added_ratio, "<=", MAX_ADDED_P50_VS_LITELLM, note)
    return checks


def result_json(r: TargetResult) -> dict[str, Any]:
    data = asdict(r)
    data["wrk"]["errors"] = r.wrk.errors
    return data


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(
    results: dict[str, TargetResult], checks: list[dict[str, Any]], meta: dict[str, Any], out: TextIO
) -> None:
    machine = meta["machine"]
    print(file=out)
    print(
        f"Gateway overhead, shape {meta.get('shape', DEFAULT_SHAPE)}: {meta['connections']} connections, "
        f"{meta['threads']} wrk threads, {meta['duration_s']:g} s runs after {meta['warmup_s']:g} s warm-ups, "
        f"upstream delay {meta['delay_ms']:g} ms, client timeout {meta.get('client_timeout_s', 10.0):g} s, "
        f"pinning: {meta['pinning']}",
        file=out,
    )
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores; {meta['date']}", file=out)
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    print(f"Versions: {versions}", file=out)
    print(file=out)
    header = f"{'target':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'added p50 ms':>14}{'errors':>8}{'timeouts':>10}"
    header += f"{'CPU ms/req':>12}{'other load %':>14}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in results.values():
        print(
            f"{r.target:<12}{r.rps:>10.1f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
            f"{_fmt(r.added_p50_ms):>14}{r.errors:>8}{r.wrk.timeouts:>10}{_fmt(r.cpu_ms_per_request, 3):>12}"
            f"{_fmt(r.other_load_during_pct, 0):>14}",
            file=out,
        )
    for r in results.values():
        if r.log_errors:
            print(f"warning: {r.target} logged {r.log_errors} error lines; the first: {r.log_error_sample}", file=out)
        if r.errors:
            print(f"warning: {r.target} had {r.errors} failed requests during the measured run", file=out)
        busy = r.other_load_during_pct
        if busy is not None and busy > BUSY_THRESHOLD_PCT:
            print(f"warning: other processes used {busy:.0f}% of the CPUs during the {r.target} run", file=out)
    print(file=out)
    if not checks:
        print("No Pilothouse targets to check (Pilothouse or the direct run was skipped).", file=out)
    for c in checks:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[c["met"]]
        note = f"  ({c['note']})" if c["note"] else ""
        print(
            f"{c['check']:<42} = {_fmt(c['value']):>7}  target {c['op']} {c['threshold']:<5g} {status}{note}",
            file=out,
        )
    print(file=out)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    git = ""
    with contextlib.suppress(OSError):
        out = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        git = out.stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "kernel": platform.release(),
        "loadavg_at_start": _loadavg(),
        "python": platform.python_version(),
        "pilothouse_git": git or "no commit",
        "pilothouse_src_sha256": _source_digest(REPO_DIR / "src" / "pilothouse"),
    }


def _source_digest(root: Path) -> str | None:
    """A short digest of the package's Python sources, to tell apart runs of an uncommitted tree."""
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
