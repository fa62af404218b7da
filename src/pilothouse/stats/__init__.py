"""Statistics that stay valid under continuous monitoring, for canaries, online evaluations and alerts.

- `sequential`: the mixture sequential probability ratio test (mSPRT) and its always-valid confidence bounds
  for a difference of means: look after every request if you like, the chance of ever rejecting a true null
  stays at most alpha.
- `strata`: group samples into time strata in which both arms are present, so load changes compare like
  with like.
- `clustered`: the time-stratified difference of two arms' means with a cluster-robust variance (clusters:
  end users, whose requests are correlated when traffic is sticky per user).
- `effect`: minimum effect sizes (absolute and relative to the baseline).
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
