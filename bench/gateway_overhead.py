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
    .venv/bin/python bench/gateway_overhead.py --shape long --skip-litellm   # long LLM calls, ~60 s

`--shape` picks the load (bench/overhead/shapes.py): `fast` (the default above) measures what the gateway
costs per request; `long` puts 500 connections on an upstream that answers in 1.5 s, the shape of real LLM
traffic, and checks that nothing in the gateway queues calls: Pilothouse req/s >= 0.9 x direct with no
client timeouts (LiteLLM is shown, not checked). Explicit options (--connections, --delay-ms, ...) override
the shape's.

It is a benchmark, not a test: it needs `wrk` (`apt-get install -y wrk`) and, for LiteLLM, PyPI access on
first use. See bench/README.md for what the numbers mean and their limits (wrk, the upstream and the
gateway share the machine's cores). The parts live in `bench/overhead/`; this file parses the arguments and
runs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from overhead.cli import add_profile_args, add_run_args, check_run_args, run_main
from overhead.processes import Processes
from overhead.profile import print_profiles
from overhead.report import print_report
from overhead.runner import run
from overhead.shapes import DEFAULT_SHAPE, SHAPES


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    # The shape sets the defaults of the load options, so it is read first; explicit options still win.
    shape_parser = argparse.ArgumentParser(add_help=False)
    shape_parser.add_argument("--shape", choices=sorted(SHAPES), default=DEFAULT_SHAPE)
    shape = SHAPES[shape_parser.parse_known_args(argv)[0].shape]
    parser = argparse.ArgumentParser(
        description=(
            "Measure the overhead of Pilothouse and of the LiteLLM proxy in front of a fast fake "
            "OpenAI-compatible upstream, with wrk, on loopback. Targets: Pilothouse req/s >= 0.5 x direct, "
            ">= 5 x LiteLLM, and added median latency <= 0.25 x LiteLLM's."
        ),
        epilog="Needs wrk (apt-get install -y wrk). See bench/README.md; with caching, budgets and rate limits "
        "on: bench/gateway_features.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default=DEFAULT_SHAPE,
        help="; ".join(f"{name}: {sh.describes}" for name, sh in SHAPES.items()),
    )
    add_run_args(parser)
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="also measure Pilothouse with this guard policy pushed (repeatable; e.g. "
        "examples/policies/block-injection.yaml); target: req/s >= 0.5 x direct",
    )
    add_profile_args(parser)
    parser.set_defaults(
        connections=shape.connections,
        delay_ms=shape.delay_ms,
        duration=shape.duration_s,
        warmup=shape.warmup_s,
        timeout=shape.timeout_s,
    )
    args = parser.parse_args(argv)
    check_run_args(parser, args)
    return args


def _run(args: argparse.Namespace, procs: Processes, work: Path) -> tuple[dict[str, Any], Callable[[TextIO], None]]:
    report, results = run(args, procs, work)

    def print_text(out: TextIO) -> None:
        print_report(results, report["checks"], report, out)
        print_profiles(report["profiles"], out)

    return report, print_text


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(parse_args(argv), _run)


if __name__ == "__main__":
    sys.exit(main())
