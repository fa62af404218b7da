"""Bootstrap confidence intervals for an aggregate of per-item scores (a mean, by default).

Why the bias-corrected and accelerated (BCa) interval: evaluation scores are bounded and often skewed (a pass
rate of 0.95 on 60 items), where the plain percentile interval under-covers; BCa (Efron 1987) corrects for the
bootstrap distribution's bias and skew and keeps close to its nominal coverage with a few dozen items
(tests/stats/test_bootstrap.py checks coverage by simulation). With fewer than `MIN_ITEMS` items or no variation
the interval is degenerate, and says so, rather than pretending a precision it does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MIN_ITEMS", "Interval", "bootstrap_interval"]

MIN_ITEMS = 2
Statistic = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""Rows of resampled values -> the statistic of each row (vectorised over axis 1)."""


def _mean(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    means: NDArray[np.float64] = rows.mean(axis=-1)
    return means


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str
    """`bca`, `percentile` (when the acceleration cannot be estimated) or `degenerate` (too few items, or all
    equal: low = high = estimate)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "n": self.n,
            "method": self.method,
        }


JACKKNIFE_MAX = 1000
"""Above this many items a statistic other than the mean gets the percentile interval (the jackknife's n x n
matrix would not fit comfortably); the mean's leave-one-out values have a closed form at any size."""


def _jackknife_acceleration(values: NDArray[np.float64], statistic: Statistic) -> float | None:
    n = len(values)
    if statistic is _mean:
        leave_one_out = (values.sum() - values) / (n - 1)
    elif n <= JACKKNIFE_MAX:
        mask = ~np.eye(n, dtype=bool)
        leave_one_out = statistic(np.broadcast_to(values, (n, n))[mask].reshape(n, n - 1))
    else:
        return None
    centred = leave_one_out.mean() - leave_one_out
    denominator: float = 6.0 * float(np.sum(centred**2)) ** 1.5
    if denominator == 0.0:
        return None
    return float(np.sum(centred**3)) / denominator


def bootstrap_interval(
    values: Sequence[float] | NDArray[np.float64],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    statistic: Statistic = _mean,
) -> Interval:
    """A BCa bootstrap interval of `statistic` (default the mean) of `values`. Deterministic for a seed."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or not np.all(np.isfinite(data)):
        raise ValueError("values must be a flat list of finite numbers")
    n = len(data)
    if n == 0:
        raise ValueError("no values to summarise")
    estimate = float(statistic(data[np.newaxis, :])[0])
    if n < MIN_ITEMS or np.all(data == data[0]):
        return Interval(estimate, estimate, estimate, confidence, n, "degenerate")
    rng = np.random.default_rng(seed)
    replicates = statistic(data[rng.integers(0, n, size=(resamples, n))])
    alpha = 1.0 - confidence
    normal = NormalDist()
    share_below = float(np.mean(replicates < estimate)) + 0.5 * float(np.mean(replicates == estimate))
    acceleration = _jackknife_acceleration(data, statistic)
    if acceleration is None or not 0.0 < share_below < 1.0:
        low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
        return Interval(estimate, float(low), float(high), confidence, n, "percentile")
    z0 = normal.inv_cdf(share_below)
    quantiles = []
    for tail in (alpha / 2, 1 - alpha / 2):
        z = normal.inv_cdf(tail)
        adjusted = z0 + (z0 + z) / (1 - acceleration * (z0 + z))
        quantiles.append(min(max(normal.cdf(adjusted), 0.0), 1.0))
    low, high = np.quantile(replicates, quantiles)
    return Interval(estimate, float(low), float(high), confidence, n, "bca")
