"""What both entry points share on the command line: the options of a run, and the main loop that runs it,
stops every server on the way out (errors, Ctrl-C, SIGTERM) and prints or writes the report."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from .common import BENCH_DIR, BUSY_THRESHOLD_PCT, REPO_DIR, BenchError, log
from .processes import Processes
from .runner import workdir

# A whole run: (arguments, the processes to start servers with, a temporary working directory) ->
# (the JSON-ready report, which has "all_met" and "command"; a function that prints it as text).
Runner = Callable[[argparse.Namespace, Processes, Path], tuple[dict[str, Any], Callable[[TextIO], None]]]


def add_run_args(parser: argparse.ArgumentParser, duration: float = 15.0) -> None:
    """The options every gateway run takes: wrk's load, which targets, where the servers come from, quiet windows."""
    parser.add_argument("--duration", type=float, default=duration, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of the warm-up run before each")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (-c)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="upstream delay before each reply")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="client timeout: wrk counts a request unanswered this long as an error",
    )
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
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with logs")


def add_profile_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after each gateway's measured run, sample it with py-spy for this long during an extra, "
        "uncounted wrk run and print its hot spots (0: off)",
    )
    parser.add_argument("--profile-dir", default=str(BENCH_DIR / "results"), help="where py-spy's folded profiles go")


def check_run_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup must be at least 1 second")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    log(f"stopping on {signal.Signals(signum).name}")
    raise SystemExit(128 + signum)


def run_main(args: argparse.Namespace, runner: Runner) -> int:
    """Run `runner` in a temporary directory, then print (or write) its report; the process's exit code."""
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
                report, print_text = runner(args, procs, work)
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
        print_text(sys.stdout)
        print(f"Command: {report['command']}\nBenchmark took {report['elapsed_s']:.0f} s.")
    log(f"done in {report['elapsed_s']:.0f} s")
    if args.strict and report["all_met"] is False:
        return 1
    return 0
