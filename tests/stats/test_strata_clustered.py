"""Time strata and the clustered, stratified difference: a load change shared by both arms does not become a
difference, and sticky users' correlated samples widen the variance as they should."""

from __future__ import annotations

import numpy as np
import pytest

from pilothouse.stats.clustered import stratified_difference
from pilothouse.stats.effect import MinimumEffect
from pilothouse.stats.strata import time_strata


def test_buckets_merge_until_both_arms_are_present() -> None:
    times = [0, 1, 2, 61, 62, 63, 121, 122, 300]
    treated = [True, False, False, True, False, True, False, False, True]
    strata = time_strata(times, treated, width_s=60, min_per_arm=2)
    # 0-2 has one candidate: merged with 61-63 (2 candidates, 3 baseline); the tail joins it too
    assert strata.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0]
    strata = time_strata(times, treated, width_s=60, min_per_arm=1)
    assert strata.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert time_strata([0, 1], [True, True], width_s=60).tolist() == [-1, -1]
    assert time_strata([], [], width_s=60).tolist() == []
    with pytest.raises(ValueError):
        time_strata([0], [True], width_s=0)


def test_a_load_change_is_not_credited_to_the_version() -> None:
    """The baseline's calls bunch up in a slow period: pooled, the baseline looks 100 ms slower; within
    strata the versions are equal."""
    rng = np.random.default_rng(1)
    times = np.arange(240.0)
    slow = times >= 120
    index = np.arange(240)
    treated = np.where(slow, index % 10 == 0, index % 2 == 0)  # the candidate's users are quiet when it is busy
    values = 300.0 + 100.0 * slow + rng.normal(0, 10, 240)
    pooled = values[treated].mean() - values[~treated].mean()
    assert pooled < -40
    est = stratified_difference(values, treated, time_strata(times, treated, width_s=60))
    assert est is not None and abs(est.difference) < 10
    assert est.strata == 4 and est.candidate.n + est.baseline.n + est.excluded == 240


def test_clustered_variance_sees_correlated_users() -> None:
    rng = np.random.default_rng(2)
    users = np.repeat(np.arange(20), 20)  # 20 users, 20 requests each
    treated = users % 2 == 1  # sticky
    values = rng.normal(0, 1, 20)[users] + rng.normal(0, 0.2, 400)  # mostly the user's own level
    strata = np.zeros(400, dtype=np.int64)
    independent = stratified_difference(values, treated, strata)
    clustered = stratified_difference(values, treated, strata, [f"u{u}" for u in users])
    assert independent is not None and clustered is not None
    assert clustered.difference == pytest.approx(independent.difference)
    assert clustered.variance > 5 * independent.variance
    assert clustered.candidate.clusters == 10 and clustered.baseline.clusters == 10


def test_an_arm_with_no_variation_is_not_taken_as_certain() -> None:
    values = [1.0] * 10 + [1.0] * 9 + [0.0]
    treated = [True] * 10 + [False] * 10
    est = stratified_difference(values, treated, [0] * 20)
    assert est is not None and est.variance_independent > 0 and est.variance > 0


def test_minimum_effect() -> None:
    assert MinimumEffect(10.0, 0.05).threshold(100.0) == 10.0
    assert MinimumEffect(10.0, 0.05).threshold(1000.0) == 50.0
    assert MinimumEffect(0.0, 0.05).threshold(-0.8) == pytest.approx(0.04)
    with pytest.raises(ValueError):
        MinimumEffect(-1.0, 0.0)
