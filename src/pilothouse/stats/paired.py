"""Paired comparison of two variants scored on the same items: is the candidate better or worse, by how much,
and how sure are we.

Pairing matters: items differ far more from each other than variants do, so comparing two independent means
wastes most of the data. On the per-item differences d_i = candidate_i - baseline_i this gives
- the mean difference with a BCa bootstrap interval (`bootstrap.bootstrap_interval`),
- a two-sided p-value from the sign-flip permutation test (under the null of no difference each d_i is as
  likely to be -d_i): exact over all 2^n sign patterns for n <= `EXACT_MAX`, else Monte Carlo with the
  (count + 1) / (resamples + 1) estimate, which never reports p = 0,
- effect sizes: the mean difference, and d_z = mean / sd of the differences (Cohen's d for paired samples).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pilothouse.stats.bootstrap import Interval, bootstrap_interval

__all__ = ["EXACT_MAX", "PairedComparison", "paired_comparison", "sign_flip_p_value"]

EXACT_MAX = 16


@dataclass(frozen=True, slots=True)
class PairedComparison:
    n: int
    baseline_mean: float
    candidate_mean: float
    difference: Interval
    """candidate - baseline, with its interval."""
    p_value: float
    effect_size: float
    """d_z: the mean difference over the standard deviation of the differences (0 when they do not vary)."""
    wins: int
    losses: int
    ties: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "baseline_mean": self.baseline_mean,
            "candidate_mean": self.candidate_mean,
            "difference": self.difference.to_dict(),
            "p_value": self.p_value,
            "effect_size": self.effect_size,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }


def sign_flip_p_value(differences: NDArray[np.float64], *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of the sign-flip permutation test of mean(differences) == 0."""
    d = differences[differences != 0.0]
    n = len(d)
    if n == 0:
        return 1.0
    observed = abs(float(d.mean())) * (1 - 1e-12)
    if n <= EXACT_MAX:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
        return float(np.mean(np.abs((signs * d).mean(axis=1)) >= observed))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(resamples, n))
    extreme = int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed))
    return (extreme + 1) / (resamples + 1)


def paired_comparison(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-item scores of two variants on the same items (same order). ValueError if they do not pair."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("baseline and candidate need one score per item, for the same items")
    if len(a) == 0:
        raise ValueError("no items to compare")
    d = b - a
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return PairedComparison(
        n=len(d),
        baseline_mean=float(a.mean()),
        candidate_mean=float(b.mean()),
        difference=bootstrap_interval(d, confidence=confidence, resamples=min(resamples, 4000), seed=seed),
        p_value=sign_flip_p_value(d, resamples=resamples, seed=seed),
        effect_size=float(d.mean()) / sd if sd > 0 else 0.0,
        wins=int(np.sum(d > 0)),
        losses=int(np.sum(d < 0)),
        ties=int(np.sum(d == 0)),
    )
