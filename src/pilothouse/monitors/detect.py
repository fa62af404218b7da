"""Decide when a monitored series has really moved: a CUSUM change-point test against a baseline window.

How: the baseline window (e.g. the 7 days before the monitoring window) gives the metric's level `mu0` and the
spread of one unit `var0`. The smallest move worth an alert is `delta = max(min_abs, min_rel * |mu0|)`. Over the
monitoring window's buckets a one-sided CUSUM accumulates the log-likelihood ratio of "moved by delta" against
"unchanged" (Page 1954): for a rate, the exact Bernoulli ratio of `k` events in `n` units; for a mean, the
Gaussian one, (delta / var0) * (sum - n mu0 - n delta / 2). `S_t = max(0, S_{t-1} + increment_t)` drifts down while
nothing changes and climbs once the level moved; it alarms when it reaches `h`.

`h` is chosen by simulation, not by hand: the series is replayed under "no change" (binomial or normal buckets
with the baseline's level, spread and the typical bucket size) and `h` is the (1 - false_alarm) quantile of the
largest `S` over one window, so a stable series alarms within a window with probability about `false_alarm`
(split between the two sides when `direction` is both). Thresholds are cached per setting.

An alarm also needs the estimated effect since the change point (where `S` last left zero) to be at least the
minimum effect, absolute and relative: small, real moves (a rate from 2.0% to 2.2%) never page anyone.
A series "returns" (the alert resolves) when the pooled level of its last `resolve_buckets` buckets is within
half the minimum effect of the baseline.

Why not `stats/sequential.py`: the mSPRT there answers "is the candidate worse than the baseline, ever?" for a
canary that ends; a monitor runs forever, and a CUSUM restarts itself after every quiet stretch (its detection
delay does not grow with the time the series was stable before the change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from pilothouse.monitors.series import Bucket, Kind

__all__ = ["Baseline", "Detection", "DetectorSettings", "baseline_of", "cusum_threshold", "detect", "has_returned"]

Direction = Literal["up", "down", "both"]
_P_MIN = 1e-4
_SIMULATIONS = 4000


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """A rule's detector. Durations are seconds; effects are in the metric's units (a rate: 0.02 = 2 points)."""

    bucket_s: float = 3600.0
    window_s: float = 86_400.0
    """The monitoring window: the buckets the CUSUM runs over."""
    baseline_s: float = 7 * 86_400.0
    """The baseline window, just before the monitoring window."""
    min_abs: float = 0.02
    """The smallest absolute move that alerts."""
    min_rel: float = 0.25
    """The smallest move relative to the baseline level that alerts (0.25: a quarter)."""
    false_alarm: float = 0.01
    """Target probability that a stable series alarms within one window."""
    direction: Direction = "up"
    min_samples: int = 50
    """Units the baseline needs before the detector decides anything."""
    resolve_buckets: int = 3

    def __post_init__(self) -> None:
        if not (self.bucket_s > 0 and self.window_s >= self.bucket_s and self.baseline_s >= self.bucket_s):
            raise ValueError("bucket_s must be positive and window_s and baseline_s at least one bucket")
        if self.window_s / self.bucket_s > 2000 or self.baseline_s / self.bucket_s > 10_000:
            raise ValueError("too many buckets: at most 2000 in the window and 10000 in the baseline")
        if not (self.min_abs >= 0 and self.min_rel >= 0 and (self.min_abs > 0 or self.min_rel > 0)):
            raise ValueError("min_abs and min_rel must not be negative, and one of them positive")
        if not 0.0001 <= self.false_alarm <= 0.5:
            raise ValueError("false_alarm must be between 0.0001 and 0.5")
        if self.direction not in ("up", "down", "both"):
            raise ValueError("direction must be up, down or both")
        if self.min_samples < 1 or self.resolve_buckets < 1:
            raise ValueError("min_samples and resolve_buckets must be at least 1")

    @property
    def window_buckets(self) -> int:
        return max(1, round(self.window_s / self.bucket_s))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DetectorSettings:
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown detector settings: {', '.join(sorted(unknown))}")
        for key, value in data.items():
            expected = str if key == "direction" else (int, float)
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ValueError(f"detector.{key} has the wrong type")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"detector.{key} must be finite")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Baseline:
    mean: float
    variance: float
    """Of one unit (a rate: p (1 - p); a percentile: of one bucket's value)."""
    units: int
    bucket_n: int
    """The typical units per bucket (the median of non-empty buckets), for the simulation."""

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": math.sqrt(self.variance), "units": self.units, "bucket_n": self.bucket_n}


@dataclass(frozen=True, slots=True)
class Detection:
    """One evaluation: `fired` when the CUSUM crossed its threshold with at least the minimum effect."""

    fired: bool
    reason: str
    baseline: Baseline | None = None
    delta: float = 0.0
    direction: str | None = None
    statistic: float = 0.0
    threshold: float = 0.0
    change_at: float | None = None
    alarm_at: float | None = None
    level: float | None = None
    """The pooled level since the change point."""
    effect: float | None = None
    relative_effect: float | None = None
    path: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fired": self.fired,
            "reason": self.reason,
            "test": "cusum",
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "min_effect": self.delta,
            "direction": self.direction,
            "statistic": round(self.statistic, 4),
            "threshold": round(self.threshold, 4),
            "change_at": self.change_at,
            "alarm_at": self.alarm_at,
            "level": self.level,
            "effect": self.effect,
            "relative_effect": self.relative_effect,
        }


def baseline_of(kind: Kind, buckets: list[Bucket]) -> Baseline | None:
    """The level and unit spread of the baseline buckets (None: no data)."""
    filled = [b for b in buckets if b.n > 0 and b.value is not None]
    if not filled:
        return None
    bucket_n = int(np.median([b.n for b in filled]))
    if kind == "quantile":  # a bucket's percentile is one observation
        values = [float(b.value) for b in filled if b.value is not None]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
        return Baseline(mean, var, len(values), 1)
    units = sum(b.n for b in filled)
    mean = sum(b.total for b in filled) / units
    if kind == "rate":
        var = mean * (1.0 - mean)
    else:
        var = max(0.0, (sum(b.total_sq for b in filled) - units * mean * mean) / max(1, units - 1))
    return Baseline(mean, var, units, bucket_n)


def _min_effect(settings: DetectorSettings, mu0: float) -> float:
    return max(settings.min_abs, settings.min_rel * abs(mu0))


def _bucket_stats(kind: Kind, bucket: Bucket) -> tuple[int, float]:
    """(n, sum) of a bucket as the CUSUM reads it (a percentile bucket is one unit)."""
    if kind == "quantile":
        return (1, float(bucket.value)) if bucket.n > 0 and bucket.value is not None else (0, 0.0)
    return bucket.n, bucket.total


def _increments(kind: Kind, mu0: Any, var0: float, delta: float, up: bool, n: Any, total: Any) -> Any:
    """The CUSUM's log-likelihood-ratio increments for arrays (or scalars) of bucket counts and sums; `mu0` may be
    an array too (one baseline level per simulated series)."""
    if kind == "rate":
        p0 = np.clip(mu0, _P_MIN, 1.0 - _P_MIN)
        p1 = np.minimum(p0 + delta, 1.0 - _P_MIN) if up else np.maximum(p0 - delta, _P_MIN)
        return total * np.log(p1 / p0) + (n - total) * np.log((1.0 - p1) / (1.0 - p0))
    var = max(var0, (delta / 4.0) ** 2, 1e-12)  # a constant baseline: any move of delta is many sds
    shift = total - n * mu0 if up else n * mu0 - total
    return (delta / var) * (shift - n * delta / 2.0)


@lru_cache(maxsize=512)
def _simulated_threshold(
    kind: Kind, mu0: float, var0: float, delta: float, up: bool, bucket_n: int, units: int, buckets: int, alpha: float
) -> float:
    """Replays "no change" `_SIMULATIONS` times: each replicate estimates its own baseline from `units` units (the
    estimate's error is part of what raises false alarms) and runs the CUSUM over `buckets` buckets."""
    rng = np.random.default_rng(20240613)
    size = (_SIMULATIONS, buckets)
    n = np.full(size, bucket_n, dtype=np.float64)
    if kind == "rate":
        p0 = min(max(mu0, _P_MIN), 1.0 - _P_MIN)
        total = rng.binomial(bucket_n, p0, size=size).astype(np.float64)
        estimate = rng.binomial(units, p0, size=(_SIMULATIONS, 1)) / units
    else:
        sd = math.sqrt(max(var0, 1e-24))
        total = rng.normal(bucket_n * mu0, sd * math.sqrt(bucket_n), size=size)
        estimate = rng.normal(mu0, sd / math.sqrt(units), size=(_SIMULATIONS, 1))
    inc = _increments(kind, estimate, var0, delta, up, n, total)
    s = np.zeros(_SIMULATIONS)
    peak = np.zeros(_SIMULATIONS)
    for t in range(buckets):
        s = np.maximum(0.0, s + inc[:, t])
        peak = np.maximum(peak, s)
    return float(max(np.quantile(peak, 1.0 - alpha), 1e-6))


def cusum_threshold(kind: Kind, baseline: Baseline, delta: float, up: bool, buckets: int, alpha: float) -> float:
    """`h` for which a stable series' CUSUM reaches h within `buckets` buckets with probability ~alpha."""
    # Rounded so that nearby baselines share a cached simulation.
    mu0 = float(f"{baseline.mean:.2g}")
    var0 = float(f"{baseline.variance:.2g}")
    units = int(float(f"{baseline.units:.2g}"))
    bucket_n = max(1, int(float(f"{baseline.bucket_n:.2g}")))
    return _simulated_threshold(kind, mu0, var0, float(f"{delta:.2g}"), up, bucket_n, max(1, units), buckets, alpha)


def _run(
    kind: Kind, base: Baseline, delta: float, up: bool, window: list[Bucket], h: float, s: DetectorSettings
) -> Detection | None:
    cusum = 0.0
    run_start = 0
    path = []
    for i, bucket in enumerate(window):
        n, total = _bucket_stats(kind, bucket)
        if cusum == 0.0:
            run_start = i
        cusum = max(0.0, cusum + float(_increments(kind, base.mean, base.variance, delta, up, n, total)))
        path.append(round(cusum, 4))
        if cusum < h:
            continue
        since = [_bucket_stats(kind, b) for b in window[run_start : i + 1]]
        units = sum(k for k, _ in since)
        if units == 0:
            continue
        level = sum(t for _, t in since) / units
        effect = level - base.mean
        rel = effect / abs(base.mean) if base.mean else math.inf
        big_enough = abs(effect) >= s.min_abs and (base.mean == 0 or abs(rel) >= s.min_rel)
        if big_enough and (effect > 0) == up:
            return Detection(
                True,
                "the series moved",
                base,
                delta,
                "up" if up else "down",
                cusum,
                h,
                window[run_start].start,
                bucket.start + (window[1].start - window[0].start if len(window) > 1 else 0.0),
                level,
                effect,
                None if math.isinf(rel) else rel,
                path,
            )
    return None


def detect(kind: Kind, baseline: list[Bucket], window: list[Bucket], settings: DetectorSettings) -> Detection:
    """Run the CUSUM of `window` against `baseline` (both oldest first)."""
    base = baseline_of(kind, baseline)
    needed = settings.min_samples if kind != "quantile" else max(3, settings.min_samples // 10)
    if base is None or base.units < needed:
        return Detection(False, f"not enough baseline data ({0 if base is None else base.units} < {needed})", base)
    delta = _min_effect(settings, base.mean)
    sides = [True, False] if settings.direction == "both" else [settings.direction == "up"]
    alpha = settings.false_alarm / len(sides)
    best = Detection(False, "no change", base, delta)
    for up in sides:
        h = cusum_threshold(kind, base, delta, up, max(1, len(window)), alpha)
        found = _run(kind, base, delta, up, window, h, settings)
        if found is not None:
            return found
        best = Detection(False, "no change", base, delta, threshold=h)
    return best


def has_returned(kind: Kind, baseline_mean: float, delta: float, recent: list[Bucket]) -> tuple[bool, float | None]:
    """Whether the pooled level of `recent` is within delta / 2 of the baseline (and that level; None: no data)."""
    stats = [_bucket_stats(kind, b) for b in recent]
    units = sum(n for n, _ in stats)
    if units == 0:
        return False, None
    level = sum(t for _, t in stats) / units
    return abs(level - baseline_mean) < delta / 2.0, level
