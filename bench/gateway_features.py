"""Gateway benchmark with caching, budgets and rate limits switched on: Pilothouse against the LiteLLM proxy
with the same features on, in front of the same fast fake upstream, in one run, on loopback.

1. start `bench/upstream.py` (answers after 20 ms; counts the chat completions it receives);
2. for each target (direct, LiteLLM, Pilothouse; one gateway at a time), with its features on and their
   state in one Redis (under key prefixes unique to the run, deleted at the end):
   - check that each feature is on: a repeated request is served from the cache (one upstream call, the
     cache header), a tiny rpm and a tiny budget on side subjects refuse the second call;
   - measure with wrk (32 connections) sending a mix: by default half new requests (misses, stored) and
     half one repeated request (hits); print req/s, p50, p99 and how many calls reached the upstream;
   - with `--soak SECONDS`: a memory soak of new requests only, sampling the server's RSS;
3. check Pilothouse's targets: req/s >= 3 x LiteLLM's, RSS growth after the warm-up <= 10%.

    .venv/bin/python bench/gateway_features.py --soak 120                # ~7 min on a quiet machine
    .venv/bin/python bench/gateway_features.py --skip-litellm --duration 10
    .venv/bin/python bench/gateway_features.py --json-out bench/results/features.json

Needs wrk and Redis (`--redis-url`, default $PILOTHOUSE_REDIS_URL or redis://127.0.0.1:6379/0). The parts
live in `bench/overhead/` (features*.py, mix.py, memory.py, verify.py); see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from overhead.cli import add_profile_args, add_run_args, check_run_args, run_main
from overhead.features_report import MAX_RSS_GROWTH_PCT, MIN_RPS_VS_LITELLM, evaluate, print_features_report
from overhead.features_runner import run_features
from overhead.processes import Processes
from overhead.profile import print_profiles


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure Pilothouse and the LiteLLM proxy with caching, budgets and rate limits on, in front of a "
            "fast fake OpenAI-compatible upstream, with wrk, on loopback; optionally soak them for memory. "
            f"Targets: Pilothouse req/s >= {MIN_RPS_VS_LITELLM:g} x LiteLLM's, RSS growth after warm-up "
            f"<= {MAX_RSS_GROWTH_PCT:g}%%."
        ),
        epilog="Needs wrk (apt-get install -y wrk) and Redis. See bench/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_run_args(parser)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("PILOTHOUSE_REDIS_URL") or "redis://127.0.0.1:6379/0",
        help="the Redis both gateways keep their cache and counters in",
    )
    parser.add_argument(
        "--new-share",
        type=float,
        default=0.5,
        help="share of new requests (cache misses) in the measured runs; the rest repeat one request (hits)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after each gateway's measured run, send new requests only for this long while sampling its RSS "
        "(0: no soak)",
    )
    parser.add_argument(
        "--soak-connections", type=int, default=0, help="wrk connections during the soak (0: --connections)"
    )
    parser.add_argument("--soak-interval", type=float, default=5.0, help="seconds between RSS samples")
    add_profile_args(parser)
    args = parser.parse_args(argv)
    check_run_args(parser, args)
    if not 0.0 <= args.new_share <= 1.0:
        parser.error("--new-share must be within 0..1")
    if args.soak and (args.soak < 10 or args.soak_interval <= 0 or args.soak_interval > args.soak / 5):
        parser.error("--soak needs at least 10 s and at least 5 samples (--soak-interval <= SECONDS / 5)")
    return args


def _run(args: argparse.Namespace, procs: Processes, work: Path) -> tuple[dict[str, Any], Callable[[TextIO], None]]:
    report, run = run_features(args, procs, work)
    report["checks"] = evaluate(run)
    report["all_met"] = all(c["met"] for c in report["checks"]) if report["checks"] else None

    def print_text(out: TextIO) -> None:
        print_features_report(report, run, out)
        print_profiles(run.profiles, out)

    return report, print_text


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(parse_args(argv), _run)


if __name__ == "__main__":
    sys.exit(main())
