"""The difference of two arms' means within time strata, with a cluster-robust variance.

Estimate: within each stratum s (see `strata.time_strata`) the candidate's mean minus the baseline's, averaged
with weights w_s = n1 n0 / (n1 + n0) (the inverse variance of a stratum's difference when variances are
equal, as in the Cochran-Mantel-Haenszel estimator). The estimate is a linear combination sum_i a_i y_i of
the samples.

Variance: sticky traffic sends all of a user's requests to one arm, and a user's requests are correlated (a
slow region, a generous rater), so treating them as independent understates the variance and fakes
significance. The cluster-robust (sandwich) variance sums a_i e_i within each cluster before squaring:
V = G/(G-1) * sum_g (sum_{i in g} a_i e_i)^2, with e_i the residual from its arm's stratum mean, scaled by
sqrt(n_cell/(n_cell - 1)) for the degree of freedom the mean used (HC2). A sample without a user key is a
cluster of its own, which makes V the heteroskedasticity-robust variance.

Few clusters make the sandwich noisy, and a small arm can show no variation by chance (ten 0/1 scores all
1): the variance used is never below the independent-samples variance computed from each arm's
within-stratum variance shrunk towards the variance of all samples with `prior_weight` pseudo-samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

PRIOR_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm's samples inside the compared strata."""

    n: int
    clusters: int
    mean: float
    sd: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "clusters": self.clusters, "mean": self.mean, "sd": self.sd}


@dataclass(frozen=True, slots=True)
class DifferenceEstimate:
    """Candidate minus baseline, its variance and what it was computed from."""

    difference: float
    variance: float
    variance_clustered: float
    variance_independent: float
    scale: float  # the pooled within-stratum standard deviation of one sample (shrunk like the variance)
    strata: int
    candidate: ArmSummary
    baseline: ArmSummary
    excluded: int  # samples outside every stratum (an arm missing there)

    def to_dict(self) -> dict[str, Any]:
        return {
            "difference": self.difference,
            "std_error": math.sqrt(self.variance),
            "variance_clustered": self.variance_clustered,
            "variance_independent": self.variance_independent,
            "sample_sd": self.scale,
            "strata": self.strata,
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict(),
            "excluded": self.excluded,
        }


def _arm(values: npt.NDArray[np.float64], clusters: npt.NDArray[np.int64]) -> ArmSummary:
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return ArmSummary(int(values.size), int(np.unique(clusters).size), float(values.mean()), sd)


def stratified_difference(
    values: npt.ArrayLike,
    treated: npt.ArrayLike,
    strata: npt.ArrayLike,
    clusters: npt.ArrayLike | None = None,
    *,
    prior_weight: float = PRIOR_WEIGHT,
) -> DifferenceEstimate | None:
    """The stratified candidate-minus-baseline difference (see the module docstring); None when no stratum
    holds samples of both arms. Samples in stratum -1 are left out; `clusters` (any hashable ids, e.g. user
    keys) default to one cluster per sample."""
    y_all = np.asarray(values, dtype=float)
    arm_all = np.asarray(treated, dtype=bool)
    s_all = np.asarray(strata, dtype=np.int64)
    if not (y_all.shape == arm_all.shape == s_all.shape) or y_all.ndim != 1:
        raise ValueError("values, treated and strata must be one-dimensional and of the same length")
    if not np.all(np.isfinite(y_all)):
        raise ValueError("every value must be a finite number")
    if clusters is None:
        g_all = np.arange(y_all.size, dtype=np.int64)
    else:
        raw = np.asarray(clusters)
        if raw.shape != y_all.shape:
            raise ValueError("clusters must have one id per value")
        g_all = np.unique(raw, return_inverse=True)[1].astype(np.int64).reshape(-1)
    keep = s_all >= 0
    y, arm, g = y_all[keep], arm_all[keep], g_all[keep]
    stratum_ids, s = np.unique(s_all[keep], return_inverse=True)
    n_strata = int(stratum_ids.size)
    n1 = np.bincount(s, weights=arm, minlength=n_strata)
    n0 = np.bincount(s, weights=~arm, minlength=n_strata)
    if n_strata == 0 or np.any(n1 == 0) or np.any(n0 == 0):
        return None
    m1 = np.bincount(s, weights=np.where(arm, y, 0.0), minlength=n_strata) / n1
    m0 = np.bincount(s, weights=np.where(arm, 0.0, y), minlength=n_strata) / n0
    w = n1 * n0 / (n1 + n0)
    w = w / w.sum()
    difference = float(np.dot(w, m1 - m0))

    coef = np.where(arm, w[s] / n1[s], -w[s] / n0[s])
    resid = y - np.where(arm, m1[s], m0[s])
    cell = np.where(arm, n1[s], n0[s])
    scaled = resid * np.sqrt(np.where(cell > 1, cell / np.maximum(cell - 1, 1), 1.0))
    per_cluster = np.bincount(g, weights=coef * scaled)
    n_clusters = int(np.count_nonzero(np.bincount(g)))
    v_cluster = float(n_clusters / (n_clusters - 1) * np.sum(per_cluster**2)) if n_clusters > 1 else 0.0

    total_var = float(y.var(ddof=1)) if y.size > 1 else 0.0
    v_indep, pooled_ss, pooled_df = 0.0, 0.0, 0.0
    for side in (True, False):
        mask = arm == side
        ss = float(np.sum(resid[mask] ** 2))
        df = max(float(mask.sum()) - n_strata, 0.0)
        shrunk = (ss + prior_weight * total_var) / (df + prior_weight) if df + prior_weight > 0 else total_var
        v_indep += shrunk * float(np.sum(coef[mask] ** 2))
        pooled_ss, pooled_df = pooled_ss + ss, pooled_df + df
    scale = math.sqrt((pooled_ss + prior_weight * total_var) / (pooled_df + prior_weight))
    return DifferenceEstimate(
        difference=difference,
        variance=max(v_cluster, v_indep),
        variance_clustered=v_cluster,
        variance_independent=v_indep,
        scale=scale,
        strata=n_strata,
        candidate=_arm(y[arm], g[arm]),
        baseline=_arm(y[~arm], g[~arm]),
        excluded=int(y_all.size - y.size),
    )
