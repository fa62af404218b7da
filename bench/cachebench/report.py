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
    width = max([66, *(len(c["check"]) for c in checks)])
    for c in checks:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[c["met"]]
        print(
            f"  {c['check']:<{width}} = {_fmt(c['value']):>8}  target {c['op']} {c['threshold']:g}  {status}", file=out
        )


def print_latency(result: dict[str, Any], meta: dict[str, Any], out: TextIO) -> None:
    print(file=out)
    print(
        f"Lookup latency ({meta['cpu']}, {meta['cores']} cores, OPENBLAS_NUM_THREADS={meta['openblas_threads']})",
        file=out,
    )
    width = max([68, *(len(r["name"]) + 1 for r in result["lookups"])])
    header = f"{'lookup':<{width}}{'backend':>8}{'entries':>9}{'n':>6}{'hits':>6}"
    header += f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'load':>6}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in result["lookups"]:
        print(
            f"{r['name']:<{width}}{r['backend']:>8}{r['entries']:>9}{r['lookups']:>6}{r['hits']:>6}"
            f"{r['p50_ms']:>9.3f}{r['p90_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['max_ms']:>9.2f}{r['loadavg_1m_after']:>6.1f}",
            file=out,
        )
    for name, note in result["notes"].items():
        print(f"  {name}: {note}", file=out)
    print(file=out)
    print_checks(result["checks"], out)
    for c in result["checks"]:
        if c["check"].startswith("MiniLM embedding") and c["met"] is False:
            print(
                f"  The MiniLM embedding alone takes {c['value']:.1f} ms at p99, above the {c['threshold']:g} ms "
                "target by itself: no semantic lookup that embeds the question can meet it on this machine; "
                "the search + check rows are what the cache adds on top of the embedding.",
                file=out,
            )
    print(file=out)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _with_ci(value: float | None, ci: list[float] | tuple[float, float] | None) -> str:
    if value is None or ci is None:
        return "-"
    return f"{value * 100:5.1f}% [{ci[0] * 100:5.1f}, {ci[1] * 100:5.1f}]"


def _overall(rules: list[dict[str, Any]], overall: dict[str, Any], out: TextIO) -> None:
    header = f"  {'rule':<30}{'right':>7}{'wrong':>7}  {'precision [95% CI]':<24}{'paraphrase hit rate [95% CI]':<28}"
    print(header, file=out)
    for rule in rules:
        m = overall[rule["key"]]
        print(
            f"  {rule['label']:<30}{m['right_hits']:>7}{m['wrong_hits']:>7}  "
            f"{_with_ci(m['precision'], m['precision_ci95']):<24}{_with_ci(m['hit_rate'], m['hit_rate_ci95'])}",
            file=out,
        )


def _sweeps(columns: list[tuple[str, list[dict[str, Any]]]], out: TextIO) -> None:
    """One row per threshold; per set: wrong hits, precision, paraphrase hit rate."""
    width = max(24, *(len(name) + 2 for name, _ in columns))
    print("  " + f"{'':>5}" + "".join(f"{name:>{width}}" for name, _ in columns), file=out)
    print("  " + f"{'t':>5}" + "".join(f"{'wrong  prec  rate':>{width}}" for _ in columns), file=out)
    for i, first in enumerate(columns[0][1]):
        cells = ""
        for _, rows in columns:
            r = rows[i]
            cell = f"{r['wrong_hits']:>5}{_pct(r['precision']):>7}{_pct(r['hit_rate']):>7}"
            cells += f"{cell:>{width}}"
        print(f"  {first['threshold']:>5.2f}{cells}", file=out)


def print_quality(result: dict[str, Any], out: TextIO) -> None:
    rules = result["rules"]
    print(file=out)
    print("Semantic cache quality: each pair alone in its own partition, through SemanticCache.lookup", file=out)
    print(
        "(right/wrong hits; precision = right / all hits; hit rate = right hits / pairs that mean the same)", file=out
    )
    for note in result.get("notes", []):
        print(f"  note: {note}", file=out)
    for s in result["sets"]:
        any_rule = s["overall"][rules[0]["key"]]
        held = ", HELD OUT" if s["held_out"] else ""
        print(file=out)
        print(
            f"== {s['set']} ({any_rule['pairs']} pairs: {any_rule['same']} same, "
            f"{any_rule['different']} different{held})",
            file=out,
        )
        _overall(rules, s["overall"], out)
        print(file=out)
        short = {"baseline": "today", "new": "new", "cosine_0.91": "cos>=.91", "cosine_0.80": "cos>=.80"}
        names = "".join(f"{short.get(r['key'], r['key']):>10}" for r in rules)
        print(f"  {'class (right/wrong hits)':<30}{'pairs':>6}{'same':>6}{names}", file=out)
        for c in s["by_class"]:
            cells = "".join(
                f"{str(c['rules'][r['key']]['right_hits']) + '/' + str(c['rules'][r['key']]['wrong_hits']):>10}"
                for r in rules
            )
            print(f"  {c['class'][:30]:<30}{c['pairs']:>6}{c['same']:>6}{cells}", file=out)
        print(file=out)
        for r in rules:
            if r["key"] in s["misses"]:
                m = s["misses"][r["key"]]
                kinds = ", ".join(f"{k} {n}" for k, n in sorted(m["refused_by_kind"].items(), key=lambda kv: -kv[1]))
                print(
                    f"  {r['label']}: {m['missed']} paraphrases missed, {m['below_threshold']} below the threshold, "
                    f"refused by the check: {kinds or 'none'}",
                    file=out,
                )
        disagree = ", ".join(f"{k} {n}" for k, n in s["real_path_disagreements"].items())
        print(f"  real lookup vs cosine + verdict computed directly, disagreements: {disagree}", file=out)
        for key in ("baseline", "new"):
            for w in s["wrong_hits"].get(key, []):
                print(
                    f"    wrong hit ({key}, {w['class']}): {w['query']!r} got {w['cached']!r} ({w['similarity']})",
                    file=out,
                )
        shared = s["shared_partition"]
        print(
            f"  shared partition ({shared['cached_questions']} cached questions, new rule): "
            f"{shared['right_hits']} right hits, {shared['wrong_hits']} wrong, "
            f"{len(shared['unlabelled_hits'])} on pairs the set does not label",
            file=out,
        )
        for query, matched, sim in shared["unlabelled_hits"][:10]:
            print(f"    unlabelled: {query!r} -> {matched!r} ({sim})", file=out)
    pooled = result.get("pooled_not_held_out")
    if pooled:
        print(file=out)
        print(f"== all sets not held out, pooled ({', '.join(pooled['sets'])})", file=out)
        _overall(rules, pooled["overall"], out)
    columns = [(s["set"], s["sweep"]) for s in result["sets"] if "sweep" in s]
    if pooled:
        columns.append(("pooled", pooled["sweep"]))
    if columns:
        print(file=out)
        print(
            "threshold sweep of the new check, sets not held out (wrong hits, precision, paraphrase hit rate):",
            file=out,
        )
        _sweeps(columns, out)
    print(file=out)
    print_checks(result["checks"], out)
    print(file=out)
