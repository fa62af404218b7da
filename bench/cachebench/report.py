"""Printing the cache benchmark's results: tables, and each target MET or NOT MET."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, TextIO

REPO_DIR = Path(__file__).resolve().parents[2]


def run_meta(args: Any) -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "git": git.stdout.strip() or "no commit",
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "entries": getattr(args, "entries", None),
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_checks(checks: list[dict[str, Any]], out: TextIO) -> None:
    for c in checks:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[c["met"]]
        print(f"  {c['check']:<66} = {_fmt(c['value']):>8}  target {c['op']} {c['threshold']:g}  {status}", file=out)


def print_latency(result: dict[str, Any], meta: dict[str, Any], out: TextIO) -> None:
    print(file=out)
    print(
        f"Lookup latency ({meta['cpu']}, {meta['cores']} cores, OPENBLAS_NUM_THREADS={meta['openblas_threads']})",
        file=out,
    )
    header = f"{'lookup':<68}{'backend':>8}{'entries':>9}{'n':>6}{'hits':>6}"
    header += f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'load':>6}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in result["lookups"]:
        print(
            f"{r['name']:<68}{r['backend']:>8}{r['entries']:>9}{r['lookups']:>6}{r['hits']:>6}"
            f"{r['p50_ms']:>9.3f}{r['p90_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['max_ms']:>9.2f}{r['loadavg_1m_after']:>6.1f}",
            file=out,
        )
    for name, note in result["notes"].items():
        print(f"  {name}: {note}", file=out)
    print(file=out)
    print_checks(result["checks"], out)
    print(file=out)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def print_quality(result: dict[str, Any], out: TextIO) -> None:
    print(file=out)
    print(
        f"Semantic cache quality: {result['pairs']} pairs ({result['should_hit']} should hit), "
        f"threshold {result['threshold']} (lowest with no wrong hit on the odd-numbered half)",
        file=out,
    )
    header = f"{'':<34}{'pairs':>7}{'hits':>6}{'wrong':>7}{'precision':>11}{'hit rate':>10}"
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = [
        ("all pairs", result["all"]),
        ("test half (even ids)", result["test_half"]),
        ("all, no contrast checks", result["no_contrast"]),
    ]
    if "holdout" in result:
        rows += [("held-out set", result["holdout"]), ("held-out, no contrast checks", result["holdout_no_contrast"])]
    for name, m in rows:
        print(
            f"{name:<34}{m['pairs']:>7}{m['hits']:>6}{m['wrong_hits']:>7}{_pct(m['precision']):>11}{_pct(m['hit_rate']):>10}",
            file=out,
        )
    print(file=out)
    print(f"{'category':<14}{'expect':>7}{'pairs':>7}{'hits':>6}{'wrong':>7}{'check-refused':>15}", file=out)
    for c in result["by_category"]:
        print(
            f"{c['category']:<14}{c['expect']:>7}{c['pairs']:>7}{c['hits']:>6}{c['wrong_hits']:>7}{c['refused_by_contrast']:>15}",
            file=out,
        )
    for c in result.get("holdout", {}).get("by_category", []):
        print(
            f"{'held-out ' + c['category']:<14}{c['expect']:>7}{c['pairs']:>7}{c['hits']:>6}{c['wrong_hits']:>7}"
            f"{c['refused_by_contrast']:>15}",
            file=out,
        )
    print(file=out)
    print("threshold sweep (dev = odd ids, test = even ids):", file=out)
    print(f"{'t':>6}{'dev prec':>10}{'dev rate':>10}{'test prec':>11}{'test rate':>11}{'no-check prec':>15}", file=out)
    for row in result["sweep"]:
        d, t, n = row["dev"], row["test"], row["no_contrast"]
        print(
            f"{row['threshold']:>6.2f}{_pct(d['precision']):>10}{_pct(d['hit_rate']):>10}{_pct(t['precision']):>11}"
            f"{_pct(t['hit_rate']):>11}{_pct(n['precision']):>15}",
            file=out,
        )
    shared = result["shared_partition"]
    print(file=out)
    print(
        f"shared partition ({shared['cached_questions']} questions): {shared['right_hits']} right hits, "
        f"{shared['wrong_hits']} wrong, {len(shared['unlabelled_hits'])} on unlabelled pairs",
        file=out,
    )
    for query, matched, sim in shared["unlabelled_hits"]:
        print(f"  unlabelled: {query!r} -> {matched!r} ({sim})", file=out)
    for w in result["wrong_hits"]:
        print(f"  wrong hit: {w['query']!r} answered with {w['cached']!r} ({w['similarity']})", file=out)
    for w in result.get("holdout", {}).get("wrong_hit_pairs", []):
        print(f"  held-out wrong hit: {w['query']!r} answered with {w['cached']!r} ({w['similarity']})", file=out)
    print(f"real lookup path disagreed with the sweep on {result['real_path_disagreements']} pairs", file=out)
    print(file=out)
    print_checks(result["checks"], out)
    print(file=out)
