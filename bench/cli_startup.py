"""How long `pilothouse` commands take from start to exit, against `python -c pass` on the same machine.

Each command runs as a user runs it (the `pilothouse` console script of this virtual environment, a fresh
process each time), N times, round-robin so that a burst of background load hits every command alike. The
management commands talk to a stub HTTP server in this process that answers at once (`{"data": []}`), so what
is measured is the command's own start-up and work plus one loopback round trip; the round trip alone is
measured too (an HTTP client already started), to show how little of the time it is.

`--before REF` also times the CLI as it was at a git commit (its `src/` exported to a temporary folder and put
first on PYTHONPATH, run with `python -m pilothouse`), interleaved with the rest: a before/after on one machine.

Targets (the CLI issue): `--help` and `version` under 0.3 s, management commands under 0.5 s plus the round trip.
Exits 1 if a median misses its target (`--no-check`: never).

    .venv/bin/python bench/cli_startup.py              # 20 runs per command, ~30 s
    .venv/bin/python bench/cli_startup.py -n 50 --json
    .venv/bin/python bench/cli_startup.py --before 175aa6a   # + the CLI before lazy imports
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HELP_TARGET_S = 0.3
MANAGEMENT_TARGET_S = 0.5


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    target_s: float | None  # None: a reference, not a target
    round_trip: bool = False  # the target is "plus the HTTP round trip"
    pythonpath: str | None = None  # another source tree first (--before)


class _Stub(BaseHTTPRequestHandler):
    """Answers every GET with an empty list: the commands' own cost, not the server's."""

    def do_GET(self) -> None:
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("pilothouse")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pilothouse"]


def _before_cases(ref: str, src: Path) -> list[Case]:
    """The same commands, run from the source tree of git commit `ref` (exported to `src`)."""
    exported = subprocess.run(["git", "archive", ref, "src"], capture_output=True, check=True, cwd=REPO).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=exported, check=True)
    cli = [sys.executable, "-m", "pilothouse"]
    path = str(src / "src")
    return [
        Case(f"before ({ref}): pilothouse --help", [*cli, "--help"], None, pythonpath=path),
        Case(f"before ({ref}): pilothouse version", [*cli, "version"], None, pythonpath=path),
        Case(f"before ({ref}): pilothouse keys list", [*cli, "keys", "list"], None, pythonpath=path),
    ]


def cases() -> list[Case]:
    cli, py = _cli(), sys.executable
    return [
        Case("python -c pass", [py, "-c", "pass"], None),
        Case("python: import typer, rich (the CLI framework)", [py, "-c", "import typer, rich.console"], None),
        Case(
            "python: import the server and openai (what every command loaded before)",
            [py, "-c", "import pilothouse.server.app, pilothouse.prompts.testing.http_executor"],
            None,
        ),
        Case("pilothouse --help", [*cli, "--help"], HELP_TARGET_S),
        Case("pilothouse version", [*cli, "version"], HELP_TARGET_S),
        Case("pilothouse keys --help", [*cli, "keys", "--help"], HELP_TARGET_S),
        Case("pilothouse keys list", [*cli, "keys", "list"], MANAGEMENT_TARGET_S, round_trip=True),
        Case("pilothouse audit list", [*cli, "audit", "list"], MANAGEMENT_TARGET_S, round_trip=True),
        Case("pilothouse models list --json", [*cli, "models", "list", "--json"], MANAGEMENT_TARGET_S, round_trip=True),
    ]


def _time_once(case: Case, env: dict[str, str], cwd: str) -> float:
    if case.pythonpath is not None:
        env = {**env, "PYTHONPATH": case.pythonpath}
    start = time.perf_counter()
    done = subprocess.run(case.argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{case.name} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed


def _round_trip_s(url: str, n: int) -> float:
    """The median of one GET to the stub from a client already running (urllib: no import cost in the loop)."""
    samples = []
    for _ in range(max(n, 20)):
        start = time.perf_counter()
        with urllib.request.urlopen(url + "/api/keys") as response:
            response.read()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(n: int, before: str | None = None) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_") and k != "PYTHONPATH"}
    env.update(PILOTHOUSE_URL=url, PILOTHOUSE_API_KEY="ph-bench", NO_COLOR="1", COLUMNS="120")
    try:
        with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryDirectory() as old_src:
            todo = cases() + (_before_cases(before, Path(old_src)) if before else [])
            times: dict[str, list[float]] = {c.name: [] for c in todo}
            for case in todo:  # warm the OS file cache (and write .pyc files) once; cwd has no pilothouse.toml
                _time_once(case, env, cwd)
            for _ in range(n):
                for case in todo:
                    times[case.name].append(_time_once(case, env, cwd))
        round_trip = _round_trip_s(url, n)
    finally:
        server.shutdown()
    base = statistics.median(times["python -c pass"])
    rows = []
    for case in todo:
        median = statistics.median(times[case.name])
        limit = None if case.target_s is None else case.target_s + (round_trip if case.round_trip else 0.0)
        rows.append(
            {
                "command": case.name,
                "median_s": round(median, 4),
                "min_s": round(min(times[case.name]), 4),
                "max_s": round(max(times[case.name]), 4),
                "over_python_s": round(median - base, 4),
                "ratio_to_python": round(median / base, 2),
                "target_s": None if limit is None else round(limit, 4),
                "ok": None if limit is None else median < limit,
            }
        )
    return {"runs": n, "python": sys.version.split()[0], "round_trip_s": round(round_trip, 5), "results": rows}


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['runs']} runs per command, Python {report['python']}; "
        f"stub round trip {report['round_trip_s'] * 1000:.2f} ms (median, client already started)",
        "",
        "| command | median s | min s | max s | over `python -c pass` s | x `python -c pass` | target s | met |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in report["results"]:
        target = "-" if r["target_s"] is None else f"< {r['target_s']:.3f}"
        met = "-" if r["ok"] is None else ("yes" if r["ok"] else "**no**")
        lines.append(
            f"| {r['command']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | "
            f"{r['over_python_s']:.3f} | {r['ratio_to_python']:.1f} | {target} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="runs per command (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--no-check", action="store_true", help="exit 0 even if a target is missed")
    parser.add_argument("--before", metavar="REF", help="also time the CLI of this git commit (before/after)")
    args = parser.parse_args()
    report = run(args.runs, args.before)
    print(json.dumps(report, indent=2) if args.json else render(report))
    if not args.no_check and any(r["ok"] is False for r in report["results"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
