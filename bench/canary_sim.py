"""Canary decisions by simulation: false rollbacks in A/A runs, detection of bad candidates, and power.

Every look calls the monitor's own decision function (`pilothouse.prompts.rollout.canary_rule.decide`) with the
rule's defaults, fed with synthetic samples; users are assigned to arms by the gateway's own sticky split
(`pilothouse.prompts.registry.splits.choose_version`). Traffic: Poisson arrivals at `RATE` requests per second from
200 end users with very unequal activity (a few heavy users), each with a random effect of their own (a
generous rater, a slow region); latency lognormal around 500 ms (sd about 170 ms), errors 2%, 80% of
answers helpful; load changes that hit both arms (a busy period with 1.6x latency and double
the error rate, and an unpaced burst from three users); the monitor looks every 30 s, i.e. every 30 requests.

    .venv/bin/python bench/canary_sim.py            # about 3 minutes on 2 cores
    .venv/bin/python bench/canary_sim.py --seeds 50 # a quick look

Results go to stdout as a Markdown report (docs/benchmarks.md, "Canary decisions").
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pilothouse.prompts.registry.splits import choose_version
from pilothouse.prompts.rollout.canary_rule import Samples, decide, parse_rule

RATE = 1.0  # requests per second
CHECK_EVERY_S = 30.0  # the monitor's default canary_check_interval_s
REQUESTS = 1000
USERS = 200


@dataclass(frozen=True)
class Scenario:
    name: str
    metric: str
    weight: float  # the candidate's share, percent
    effect: Callable[[np.ndarray], np.ndarray] | None = None  # candidate's values -> worse values
    score_drop: float = 0.0


def traffic(rng: np.random.Generator, weight: float, requests: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, users, is_candidate): Poisson arrivals, Zipf-like users, sticky arms, and a 60-request burst
    from three users at t = 600 s."""
    activity = 1.0 / np.arange(1, USERS + 1) ** 0.8
    users = rng.choice(USERS, size=requests, p=activity / activity.sum())
    times = np.cumsum(rng.exponential(1.0 / RATE, size=requests))
    burst_users = rng.choice(USERS, size=3, replace=False)
    burst_at = np.searchsorted(times, 600.0)
    n_burst = min(60, requests - burst_at)
    if n_burst > 0:
        users[burst_at : burst_at + n_burst] = rng.choice(burst_users, size=n_burst)
        times[burst_at : burst_at + n_burst] = times[burst_at] + np.sort(rng.uniform(0, 5.0, size=n_burst))
        times = np.sort(times)
    splits = [{"version": 1, "weight": 100.0 - weight}, {"version": 2, "weight": weight}]
    salt = int(rng.integers(1 << 30))
    arm_of_user = np.array([choose_version(splits, f"user-{salt}-{u}") == 2 for u in range(USERS)])
    return times, users, arm_of_user[users]


def busy(times: np.ndarray) -> np.ndarray:
    """Load: a busy period from 300 s to 500 s, and the burst's seconds."""
    return ((times >= 300) & (times < 500)) | ((times >= 600) & (times < 606))


def values_for(scenario: Scenario, rng: np.random.Generator, times: np.ndarray, users: np.ndarray, cand: np.ndarray):
    load = busy(times)
    if scenario.metric == "latency_ms":
        user_factor = np.exp(rng.normal(0, 0.15, USERS))[users]
        values = 500.0 * user_factor * np.where(load, 1.6, 1.0) * np.exp(rng.normal(0, 0.3, times.size))
    elif scenario.metric == "error_rate":
        user_p = np.clip(0.02 * np.exp(rng.normal(0, 0.5, USERS)), 0, 1)[users]
        values = (rng.random(times.size) < np.clip(user_p * np.where(load, 2.0, 1.0), 0, 1)).astype(float)
    else:
        user_p = np.clip(0.8 + rng.normal(0, 0.1, USERS), 0.05, 0.99)[users]
        p = np.clip(user_p - scenario.score_drop * cand, 0, 1)
        values = (rng.random(times.size) < p).astype(float)
    if scenario.effect is not None:
        values = np.where(cand, scenario.effect(values), values)
    return values


def run(scenario: Scenario, seed: int, check_every: float = CHECK_EVERY_S) -> int | None:
    """The number of candidate requests seen when the canary was rolled back, or None if it never was."""
    rng = np.random.default_rng(seed)
    times, users, cand = traffic(rng, scenario.weight, REQUESTS)
    values = values_for(scenario, rng, times, users, cand)
    rule = parse_rule({"metric": scenario.metric})
    look = check_every
    while True:
        k = int(np.searchsorted(times, look, side="right"))
        samples = Samples(values[:k], cand[:k], times[:k], users[:k])
        if decide(rule, samples).decision == "rollback":
            return int(cand[:k].sum())
        if k >= times.size:
            return None
        look += check_every


def naive_run(seed: int, weight: float) -> bool:
    """The old rule for comparison: a fixed-alpha one-sided z-test at every look, pooled, unclustered."""
    rng = np.random.default_rng(seed)
    scenario = Scenario("score", "score:helpful", weight)
    times, users, cand = traffic(rng, weight, REQUESTS)
    values = values_for(scenario, rng, times, users, cand)
    look = CHECK_EVERY_S
    while look <= times[-1] + CHECK_EVERY_S:
        k = int(np.searchsorted(times, look, side="right"))
        a, b = values[:k][~cand[:k]], values[:k][cand[:k]]
        if min(a.size, b.size) >= 10:
            se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
            if se > 0 and (a.mean() - b.mean()) / se > 1.645:
                return True
        look += CHECK_EVERY_S
    return False


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pct(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f}% ({100 * lo:.1f}-{100 * hi:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500, help="simulated canaries per A/A scenario")
    args = parser.parse_args()
    seeds = args.seeds
    started = time.perf_counter()
    print("# Canary decisions by simulation\n")
    print(
        f"`bench/canary_sim.py --seeds {seeds}`; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; {REQUESTS} requests at {RATE:g}/s from {USERS} sticky users, "
        f"a look every {CHECK_EVERY_S:g} s; the rule's defaults (alpha 0.05, min_samples 10).\n"
    )

    print("## False rollbacks, A/A (identical versions), 95% Wilson intervals\n")
    print("| metric | candidate share | looks | false rollbacks |")
    print("|---|---|---|---|")
    for metric in ("score:helpful", "latency_ms", "error_rate"):
        for weight in (10.0, 50.0):
            scenario = Scenario(metric, metric, weight)
            k = sum(run(scenario, seed) is not None for seed in range(seeds))
            print(f"| {metric} | {weight:g}% | every 30 s | {pct(k, seeds)} |")
    frequent = seeds // 2
    scenario = Scenario("latency_ms", "latency_ms", 50.0)
    k = sum(run(scenario, 10_000 + seed, check_every=3.0) is not None for seed in range(frequent))
    print(f"| latency_ms | 50% | every 3 s (10x the monitor) | {pct(k, frequent)} |")
    k = sum(naive_run(seed, 50.0) for seed in range(seeds))
    print(f"| score:helpful, old rule (fixed-alpha z-test at every look) | 50% | every 30 s | {pct(k, seeds)} |\n")

    print("## Detection of bad candidates (candidate requests until the rollback)\n")
    print("| candidate | share | detected | median | 90th percentile | within 30 candidate requests |")
    print("|---|---|---|---|---|---|")
    bad = [
        ("dead upstream (every call fails)", "error_rate", lambda v: np.ones_like(v), 0.0),
        ("+400 ms latency", "latency_ms", lambda v: v + 400.0, 0.0),
        ("unhelpful candidate: helpful 80% -> 0% (the issue's low-score trial)", "score:helpful", None, 0.8),
        ("helpful 80% -> 20%", "score:helpful", None, 0.6),
        ("helpful 80% -> 50%", "score:helpful", None, 0.3),
    ]
    runs = max(100, seeds // 2)
    for name, metric, effect, drop in bad:
        for weight in (10.0, 50.0):
            scenario = Scenario(name, metric, weight, effect, drop)
            found = [run(scenario, 20_000 + seed) for seed in range(runs)]
            hits = np.array([f for f in found if f is not None])
            within = int(np.sum(hits <= 30))
            median = f"{np.median(hits):.0f}" if hits.size else "-"
            p90 = f"{np.percentile(hits, 90):.0f}" if hits.size else "-"
            print(f"| {name} | {weight:g}% | {pct(hits.size, runs)} | {median} | {p90} | {pct(within, runs)} |")

    print("\n## Power against effect size (score:helpful, baseline 80% helpful, rolled back within 1,000 requests)\n")
    drops = (0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.3)
    print("| drop in helpful rate | " + " | ".join(f"{d:.2f}" for d in drops) + " |")
    print("|---|" + "---|" * len(drops))
    power_runs = max(100, seeds // 3)
    for weight in (10.0, 50.0):
        cells = []
        for drop in drops:
            scenario = Scenario("power", "score:helpful", weight, None, drop)
            k = sum(run(scenario, 30_000 + seed) is not None for seed in range(power_runs))
            cells.append(f"{100 * k / power_runs:.0f}%")
        print(f"| {weight:g}% share | " + " | ".join(cells) + " |")
    print(f"\n{power_runs} runs per cell; the default minimum effect is 5% of the baseline (0.04 here).")
    print(f"\nTotal time: {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
