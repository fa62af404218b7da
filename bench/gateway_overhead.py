"""Gateway overhead benchmark: Pilothouse against the LiteLLM proxy, both in front of a fast fake upstream.

One run, all on loopback:

1. start `bench/upstream.py`, an OpenAI-compatible server that answers chat completions after a fixed
   delay (20 ms by default);
2. measure with `wrk` (32 connections, 2 threads, a POST of a small chat-completions body) three
   targets in turn, each after a warm-up run: the upstream directly, the LiteLLM proxy (one worker, no
   database, installed into `bench/.venv-litellm` from `bench/requirements-litellm.txt` on first use)
   and Pilothouse (`pilothouse up` from the project's `.venv`); only one gateway runs at a time;
3. print req/s, p50 and p99 latency, the median latency each gateway adds over the direct run, and
   whether Pilothouse meets its targets: req/s >= 0.5 x direct, req/s >= 5 x LiteLLM, added median
   latency <= 0.25 x LiteLLM's.

    .venv/bin/python bench/gateway_overhead.py                     # everything, ~70 s when quiet
    .venv/bin/python bench/gateway_overhead.py --skip-litellm --duration 10
    .venv/bin/python bench/gateway_overhead.py --json > results.json

It is a benchmark, not a test: it needs `wrk` (`apt-get install -y wrk`) and, for LiteLLM, PyPI access on
first use. See bench/README.md for what the numbers mean and their limits (wrk, the upstream and the
gateway share the machine's cores). The parts live in `bench/overhead/`; this file parses the arguments and
runs them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from overhead.common import BENCH_DIR, BUSY_THRESHOLD_PCT, REPO_DIR, BenchError, log
from overhead.processes import Processes
from overhead.profile import print_profiles
from overhead.report import print_report
from overhead.runner import run, workdir


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure the overhead of Pilothouse and of the LiteLLM proxy in front of a fast fake "
            "OpenAI-compatible upstream, with wrk, on loopback. Targets: Pilothouse req/s >= 0.5 x direct, "
            ">= 5 x LiteLLM, and added median latency <= 0.25 x LiteLLM's."
        ),
        epilog="Needs wrk (apt-get install -y wrk). See bench/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of the warm-up run before each")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (-c)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="upstream delay before each reply")
    parser.add_argument("--skip-litellm", action="store_true", help="do not install or measure LiteLLM")
    parser.add_argument("--skip-pilothouse", action="store_true", help="do not measure Pilothouse")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout (no table)")
    parser.add_argument("--json-out", metavar="PATH", help="also write the JSON results to this file")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the gateway to the last CPU and wrk + upstream to the others (needs >= 2 CPUs); "
        "by default all share every CPU",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when Pilothouse misses a target (otherwise exit 0 once measured)",
    )
    parser.add_argument(
        "--pilothouse-bin", default=str(REPO_DIR / ".venv" / "bin" / "pilothouse"), help="the pilothouse CLI"
    )
    parser.add_argument(
        "--pilothouse-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `pilothouse up` (repeatable)",
    )
    parser.add_argument(
        "--litellm-venv", default=str(BENCH_DIR / ".venv-litellm"), help="virtual environment for LiteLLM"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="seconds to wait for a server to become ready"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=f"before each target, wait up to this long for other processes to use under "
        f"{BUSY_THRESHOLD_PCT:g}%% of the CPUs (then go on with a warning)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help=f"measure a target again (warm-up included) when other processes used over "
        f"{BUSY_THRESHOLD_PCT:g}%% of the CPUs during its run; the least disturbed attempt counts",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after each gateway's measured run, sample it with py-spy for this long during an extra, "
        "uncounted wrk run and print its hot spots (0: off)",
    )
    parser.add_argument("--profile-dir", default=str(BENCH_DIR / "results"), help="where py-spy's folded profiles go")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with logs")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup must be at least 1 second")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    log(f"stopping on {signal.Signals(signum).name}")
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C raises KeyboardInterrupt even where the shell started us with SIGINT ignored (`cmd &`);
    # SIGTERM and SIGHUP unwind the same way, so every server is stopped on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGHUP, _raise_system_exit)
    procs = Processes()
    started = time.monotonic()
    try:
        with workdir(args.keep_logs) as work:
            try:
                report, results = run(args, procs, work)
            finally:
                procs.stop_all()
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(results, report["checks"], report, sys.stdout)
        print_profiles(report["profiles"], sys.stdout)
        print(f"Command: {report['command']}\nBenchmark took {report['elapsed_s']:.0f} s.")
    log(f"done in {report['elapsed_s']:.0f} s")
    if args.strict and report["all_met"] is False:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
