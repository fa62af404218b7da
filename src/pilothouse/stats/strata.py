"""Time strata: compare two arms only within the same stretches of time.

Why: load changes move latency (and sometimes scores or errors) for both arms at once. When one arm's
samples bunch up in a busy minute (a burst from sticky users who all hold the baseline), a pooled comparison
credits the load to the version. Within a stratum both arms saw the same conditions.

How: fixed buckets of `width_s` seconds from the first sample; consecutive buckets are merged until the group
holds at least `min_per_arm` samples of each arm (a leftover tail joins the last group). Which samples form
a stratum depends only on the times and the arms, never on the values, so stratifying does not bias a test.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def time_strata(
    times: npt.ArrayLike, treated: npt.ArrayLike, *, width_s: float, min_per_arm: int = 2
) -> npt.NDArray[np.int64]:
    """The stratum of each sample (0, 1, ...), or -1 for all samples when no stratum has both arms enough.

    `treated` is True for the candidate arm. Strata are numbered in time order."""
    t = np.asarray(times, dtype=float)
    arm = np.asarray(treated, dtype=bool)
    if t.shape != arm.shape or t.ndim != 1:
        raise ValueError("times and treated must be one-dimensional and of the same length")
    if not width_s > 0:
        raise ValueError(f"width_s must be positive, got {width_s}")
    if min_per_arm < 1:
        raise ValueError(f"min_per_arm must be at least 1, got {min_per_arm}")
    out = np.full(t.shape, -1, dtype=np.int64)
    if t.size == 0:
        return out
    bucket = np.floor((t - t.min()) / width_s).astype(np.int64)
    buckets, index = np.unique(bucket, return_inverse=True)
    cand = np.bincount(index, weights=arm, minlength=buckets.size)
    base = np.bincount(index, weights=~arm, minlength=buckets.size)
    group_of_bucket = np.full(buckets.size, -1, dtype=np.int64)
    group, have_c, have_b, pending = 0, 0.0, 0.0, []
    for i in range(buckets.size):
        pending.append(i)
        have_c += cand[i]
        have_b += base[i]
        if have_c >= min_per_arm and have_b >= min_per_arm:
            group_of_bucket[pending] = group
            group, have_c, have_b, pending = group + 1, 0.0, 0.0, []
    if pending and group > 0:
        group_of_bucket[pending] = group - 1  # a short tail joins the last complete stratum
    out[:] = group_of_bucket[index]
    return out
