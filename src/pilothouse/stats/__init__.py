"""Statistics for canaries, online evaluations, alerts and offline evaluations.

Under continuous monitoring:

- `sequential`: the mixture sequential probability ratio test (mSPRT) and its always-valid confidence bounds
  for a difference of means: look after every request if you like, the chance of ever rejecting a true null
  stays at most alpha.
- `strata`: group samples into time strata in which both arms are present, so load changes compare like
  with like.
- `clustered`: the time-stratified difference of two arms' means with a cluster-robust variance (clusters:
  end users, whose requests are correlated when traffic is sticky per user).
- `effect`: minimum effect sizes (absolute and relative to the baseline).

For fixed samples (evaluation runs):
- `bootstrap`: BCa bootstrap intervals of an aggregate of per-item scores.
- `paired`: two variants on the same items: the difference with its interval, a sign-flip permutation p-value and
  effect sizes.
- `multiple`: Holm and Benjamini-Hochberg corrections when many metrics are compared.
- `agreement`: confusion matrices, Cohen's (weighted) kappa, Spearman's rho and Fleiss' kappa, for judge
  calibration against people and judge stability over repeated runs.
"""

from pilothouse.stats.clustered import ArmSummary, DifferenceEstimate, stratified_difference
from pilothouse.stats.effect import MinimumEffect
from pilothouse.stats.sequential import SequentialTest, mixture_boundary, msprt
from pilothouse.stats.strata import time_strata

__all__ = [
    "ArmSummary",
    "DifferenceEstimate",
    "MinimumEffect",
    "SequentialTest",
    "mixture_boundary",
    "msprt",
    "stratified_difference",
    "time_strata",
]
