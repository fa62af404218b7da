"""Two-sample statistics for input drift: is the recent sample of input embeddings drawn from the reference's
distribution, and by how much does it differ?

- **Test**: the unbiased squared maximum mean discrepancy (MMD², Gretton et al. 2012) with a Gaussian (RBF)
  kernel whose width is the median heuristic (`k(x, y) = exp(-|x - y|² / median |x - y|²)` over the pooled
  sample), and a **permutation p-value**: the labels "recent" and "reference" are shuffled `permutations` times
  and the p-value is the share of shuffles whose MMD² is at least the observed one (with the +1 correction, so
  it is never 0). It is exact under "no drift" whatever the kernel, and needs no distributional assumption.
- **Effect size** (what a person reads): a **classifier two-sample AUC**. Each input is classified by its `k`
  nearest neighbours (cosine, leaving itself out) as the share of them that are recent; the AUC of that score
  between recent and reference inputs is 0.5 when the two are indistinguishable and 1.0 when they are fully
  separable. When a share `s` of the traffic moved to inputs the reference never had, the AUC is about
  `0.5 + s / 2`, so `min_auc = 0.6` reads "about a fifth of the inputs are of a new kind".
- **Examples**: the recent inputs farthest from the reference: the most "recent" neighbourhoods first, then the
  lowest cosine to their nearest reference input.

All of it is NumPy on a few hundred 384-dimensional vectors: well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DriftStats", "auc", "two_sample"]

Vectors = npt.NDArray[np.float32]
KNN = 10


@dataclass(frozen=True, slots=True)
class DriftStats:
    """The outcome of one two-sample comparison of `recent` (n inputs) against `reference` (m inputs)."""

    n: int
    m: int
    statistic: float
    """The unbiased MMD² (can be slightly negative under no drift)."""
    p_value: float
    permutations: int
    bandwidth: float
    """The median pairwise squared distance used as the kernel width."""
    auc: float
    """The nearest-neighbour classifier's AUC (0.5: indistinguishable, 1.0: separable)."""
    cosine_shift: float
    """1 - cosine between the mean recent and mean reference embeddings."""
    farthest: list[int]
    """Indices into `recent` of the inputs farthest from the reference, farthest first."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": "mmd-permutation",
            "n_recent": self.n,
            "n_reference": self.m,
            "statistic": round(self.statistic, 6),
            "p_value": round(self.p_value, 6),
            "permutations": self.permutations,
            "bandwidth": round(self.bandwidth, 6),
            "auc": round(self.auc, 4),
            "cosine_shift": round(self.cosine_shift, 6),
        }


def auc(scores: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_]) -> float:
    """The Mann-Whitney AUC of `scores` for the positive class against the rest (ties count a half)."""
    n_pos = int(positive.sum())
    n_neg = len(scores) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _mmd_from_sums(sxx: Any, ax_r: Any, total: float, n: int, m: int) -> Any:
    """MMD²_u from sum_{X,X'} K, a·(row sums of K) and the sum of K (K's diagonal zeroed)."""
    sxy = ax_r - sxx
    syy = total - 2.0 * ax_r + sxx
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)


def two_sample(
    recent: Vectors, reference: Vectors, *, permutations: int = 500, seed: int = 0, alpha: float | None = None
) -> DriftStats:
    """Compare `recent` (n, d) with `reference` (m, d), both unit-length rows, n, m >= 2.

    With `alpha`, the shuffling stops as soon as the p-value cannot end below `alpha` any more (its smallest
    possible final value, (hits + 1) / (permutations + 1), is already at least alpha): the decision is the same,
    the reported p-value is then the estimate from the shuffles done. `permutations=0` skips the test (p = 1)."""
    n, m = len(recent), len(reference)
    if n < 2 or m < 2:
        raise ValueError("each sample needs at least two inputs")
    pooled = np.concatenate([recent, reference]).astype(np.float64)
    size = n + m
    sq = np.sum(pooled * pooled, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    off = dist2[~np.eye(size, dtype=bool)]
    bandwidth = float(np.median(off))
    if not bandwidth > 0:
        bandwidth = float(off.mean()) if off.mean() > 0 else 1.0
    kernel = np.exp(-dist2 / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    row_sums = kernel.sum(axis=1)
    total = float(row_sums.sum())

    observed = np.zeros(size)
    observed[:n] = 1.0
    statistic = float(_mmd_from_sums(observed @ kernel @ observed, observed @ row_sums, total, n, m))

    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    for chunk in range(0, permutations, 100):  # bounded memory: 100 shuffles at a time
        count = min(100, permutations - chunk)
        order = np.argsort(rng.random((count, size)), axis=1)[:, :n]
        labels = np.zeros((count, size))
        np.put_along_axis(labels, order, 1.0, axis=1)
        sxx = np.einsum("ij,ij->i", labels @ kernel, labels)
        shuffled = _mmd_from_sums(sxx, labels @ row_sums, total, n, m)
        hits += int(np.sum(shuffled >= statistic - 1e-12))
        done += count
        if alpha is not None and (hits + 1) / (permutations + 1) >= alpha:
            break
    p_value = (hits + 1) / (done + 1)

    # Nearest-neighbour classifier AUC (leave-one-out, cosine on unit vectors).
    cosine = pooled @ pooled.T
    np.fill_diagonal(cosine, -np.inf)
    k = min(KNN, size - 1)
    neighbours = np.argpartition(-cosine, k - 1, axis=1)[:, :k]
    is_recent = np.zeros(size, dtype=bool)
    is_recent[:n] = True
    score = is_recent[neighbours].mean(axis=1)
    effect = auc(score, is_recent)

    mean_x, mean_y = pooled[:n].mean(axis=0), pooled[n:].mean(axis=0)
    norms = float(np.linalg.norm(mean_x) * np.linalg.norm(mean_y))
    shift = 1.0 - float(mean_x @ mean_y) / norms if norms > 0 else 0.0

    nearest_reference = cosine[:n, n:].max(axis=1)
    farthest = sorted(range(n), key=lambda i: (-score[i], nearest_reference[i]))
    return DriftStats(
        n=n,
        m=m,
        statistic=statistic,
        p_value=p_value,
        permutations=done,
        bandwidth=bandwidth,
        auc=effect,
        cosine_shift=0.0 if math.isnan(shift) else shift,
        farthest=farthest,
    )
