"""The outcome of a features run: Pilothouse's targets (throughput against LiteLLM with the same features on,
memory flat over the soak), and the text report: results, what each gateway had on, the soak."""

from __future__ import annotations

from typing import Any, TextIO

from .common import BUSY_THRESHOLD_PCT
from .features_runner import FeaturesRun

MIN_RPS_VS_LITELLM = 3.0
MAX_RSS_GROWTH_PCT = 10.0

FEATURES_ON = {
    "litellm": "Redis response cache (cache_params.type redis), deployment budget (max_budget + budget_duration "
    "1d, priced), deployment rpm + tpm enforced (enforce_model_rate_limits), router counters in Redis",
    "pilothouse": "exact response cache on Redis, hard daily key budget (priced deployment: reserve + settle), "
    "key rpm + tpm (sliding windows), limit store on Redis (PILOTHOUSE_REDIS_URL), traces in SQLite",
}


def evaluate(run: FeaturesRun) -> list[dict[str, Any]]:
    pilot = run.results.get("pilothouse")
    litellm = run.results.get("litellm")
    soak = run.soaks.get("pilothouse")
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, op: str, threshold: float, failed: str | None) -> None:
        met: bool | None = None
        if value is not None:
            met = (value >= threshold if op == ">=" else value <= threshold) and failed is None
        checks.append(
            {"check": name, "value": value, "op": op, "threshold": threshold, "met": met, "note": failed or ""}
        )

    if pilot and litellm:
        ratio = pilot.rps / litellm.rps if litellm.rps else None
        failed = "Pilothouse had errors during the run" if pilot.errors else None
        check("pilothouse_rps / litellm_rps (features on)", ratio, ">=", MIN_RPS_VS_LITELLM, failed)
    if soak:
        errors = soak.wrk.errors if soak.wrk else 0
        failed = "Pilothouse had errors during the soak" if errors else None
        check("pilothouse RSS growth % after warm-up (soak)", soak.growth_pct, "<=", MAX_RSS_GROWTH_PCT, failed)
    return checks


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_features_report(report: dict[str, Any], run: FeaturesRun, out: TextIO) -> None:
    machine = report["machine"]
    print(file=out)
    print(
        f"Gateways with features on: {report['connections']} connections, {report['threads']} wrk threads, "
        f"{report['duration_s']:g} s runs after {report['warmup_s']:g} s warm-ups, "
        f"{report['new_share'] * 100:g}% new requests (misses), the rest one repeated request (hits), "
        f"upstream delay {report['delay_ms']:g} ms, pinning: {report['pinning']}",
        file=out,
    )
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores; {report['date']}", file=out)
    print(f"Versions: {', '.join(f'{k} {v}' for k, v in report['versions'].items() if v)}", file=out)
    print(file=out)
    header = f"{'target':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'added p50 ms':>14}{'errors':>8}"
    header += f"{'CPU ms/req':>12}{'upstream %':>12}{'other load %':>14}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in run.results.values():
        upstream = None
        if r.upstream_calls is not None and r.wrk.requests:
            upstream = 100.0 * r.upstream_calls / r.wrk.requests
        print(
            f"{r.target:<12}{r.rps:>10.1f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{_fmt(r.added_p50_ms):>14}"
            f"{r.errors:>8}{_fmt(r.cpu_ms_per_request, 3):>12}{_fmt(upstream, 1):>12}"
            f"{_fmt(r.other_load_during_pct, 0):>14}",
            file=out,
        )
    print(
        "(upstream %: requests of the measured run that reached the upstream; the rest came from the cache)", file=out
    )
    for r in run.results.values():
        if r.log_errors:
            print(f"warning: {r.target} logged {r.log_errors} error lines; the first: {r.log_error_sample}", file=out)
        if r.errors:
            print(f"warning: {r.target} had {r.errors} failed requests during the measured run", file=out)
        busy = r.other_load_during_pct
        if busy is not None and busy > BUSY_THRESHOLD_PCT:
            print(f"warning: other processes used {busy:.0f}% of the CPUs during the {r.target} run", file=out)
    _print_features(run, out)
    _print_soaks(report, run, out)
    print(file=out)
    for c in report["checks"]:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[c["met"]]
        note = f"  ({c['note']})" if c["note"] else ""
        print(
            f"{c['check']:<46} = {_fmt(c['value']):>7}  target {c['op']} {c['threshold']:<5g} {status}{note}",
            file=out,
        )
    if not report["checks"]:
        print("No Pilothouse targets to check (Pilothouse or LiteLLM was skipped, and no soak).", file=out)
    print(file=out)


def _print_features(run: FeaturesRun, out: TextIO) -> None:
    for name, seen in run.verified.items():
        print(f"\n{name}: {FEATURES_ON.get(name, '')}", file=out)
        for feature, what in seen.items():
            print(f"  checked, {feature}: {what}", file=out)
        after = run.after.get(name)
        if after:
            print("  after the run: " + ", ".join(f"{k} {v}" for k, v in after.items()), file=out)


def _print_soaks(report: dict[str, Any], run: FeaturesRun, out: TextIO) -> None:
    if not run.soaks:
        return
    print(
        f"\nMemory soak: {report['soak_s']:g} s at {report['soak_connections']} connections, new requests only "
        f"(every one a miss, stored in the Redis cache); RSS of the server's process group, baseline at 20%",
        file=out,
    )
    header = f"{'target':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'upstream':>10}"
    header += f"{'RSS base MiB':>14}{'at s':>7}{'RSS end MiB':>13}{'peak MiB':>10}{'growth %':>10}{'other load %':>14}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for s in run.soaks.values():
        mib = [None if v is None else v / 1024 for v in (s.baseline_kib, s.end_kib, s.peak_kib)]
        wrk = s.wrk
        print(
            f"{s.target:<12}{_fmt(wrk.rps if wrk else None, 1):>10}{_fmt(wrk.p50_ms if wrk else None):>10}"
            f"{_fmt(wrk.p99_ms if wrk else None):>10}{wrk.errors if wrk else 0:>8}"
            f"{s.upstream_calls if s.upstream_calls is not None else '-':>10}{_fmt(mib[0], 1):>14}"
            f"{_fmt(s.baseline_at_s, 0):>7}{_fmt(mib[1], 1):>13}{_fmt(mib[2], 1):>10}{_fmt(s.growth_pct, 1):>10}"
            f"{_fmt(s.other_load_pct, 0):>14}",
            file=out,
        )
        if s.log_errors:
            print(f"warning: {s.target} logged {s.log_errors} error lines; the first: {s.log_error_sample}", file=out)
    for s in run.soaks.values():
        trail = ", ".join(f"{t:g}s {kib / 1024:.0f}" for t, kib in s.samples)
        print(f"  {s.target} RSS MiB over time: {trail}", file=out)
