"""Monitor detector simulation: false-alarm rate and detection delay of the CUSUM monitor (monitors/detect.py)
against a fixed-threshold rule (alert when one bucket's rate exceeds baseline + the minimum effect), side by side.

Each seed draws a baseline (30 buckets) and a monitoring window (20 buckets) of hallucination-rate buckets
(40 scored answers each, binomial). Effect 0 measures false alarms; other effects start at bucket 5 of the
window and measure detection rate and delay (buckets after the change; alarms before it are false ones and get
no delay). Run:

    OPENBLAS_NUM_THREADS=1 python bench/monitor_sim.py --seeds 500
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from pilothouse.monitors.detect import DetectorSettings, detect
from pilothouse.monitors.series import Bucket

P0, N, BASE, WINDOW, CHANGE = 0.05, 40, 30, 20, 5
SETTINGS = DetectorSettings(
    bucket_s=60, window_s=WINDOW * 60, baseline_s=BASE * 60, min_abs=0.03, min_rel=0.25, false_alarm=0.01
)


def buckets(rng: np.random.Generator, rates: list[float], start: int) -> list[Bucket]:
    out = []
    for i, p in enumerate(rates):
        k = float(rng.binomial(N, p))
        out.append(Bucket((start + i) * 60.0, N, k, k, k / N))
    return out


def fixed_rule(baseline: list[Bucket], window: list[Bucket]) -> int | None:
    """The bucket index at which one bucket's rate first exceeds the baseline + min_abs (None: never)."""
    mean = sum(b.total for b in baseline) / sum(b.n for b in baseline)
    for i, b in enumerate(window):
        if b.value is not None and b.value > mean + SETTINGS.min_abs:
            return i
    return None


def run(seeds: int) -> None:
    print(f"baseline p={P0}, {N} answers/bucket, window {WINDOW} buckets, change at bucket {CHANGE}, {seeds} seeds")
    print(f"{'effect':>7} | {'CUSUM alarms':>12} {'delay (med)':>11} | {'fixed alarms':>12} {'delay (med)':>11}")
    for effect in (0.0, 0.02, 0.03, 0.05, 0.1):
        c_hits, f_hits, c_delay, f_delay = 0, 0, [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            base = buckets(rng, [P0] * BASE, 0)
            win = buckets(rng, [P0] * CHANGE + [P0 + effect] * (WINDOW - CHANGE), BASE)
            found = detect("rate", base, win, SETTINGS)
            if found.fired and found.alarm_at is not None:
                c_hits += 1
                c_delay.append(found.alarm_at / 60 - BASE - CHANGE)
            fixed = fixed_rule(base, win)
            if fixed is not None:
                f_hits += 1
                if fixed >= CHANGE:  # an alarm before the change is a false one: no delay to measure
                    f_delay.append(fixed + 1 - CHANGE)

        def med(d: list[float]) -> str:
            return f"{statistics.median(d):.1f}" if d else "-"

        print(
            f"{effect:>7.2f} | {c_hits / seeds:>12.3f} {med(c_delay):>11} | {f_hits / seeds:>12.3f} {med(f_delay):>11}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    run(parser.parse_args().seeds)
