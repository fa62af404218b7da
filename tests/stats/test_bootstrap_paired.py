"""Bootstrap intervals, paired comparisons and multiple-comparison corrections: checked against known values
and, where only a simulation can tell, by their error rates over many seeds."""

from __future__ import annotations

import numpy as np
import pytest

from pilothouse.stats.bootstrap import bootstrap_interval
from pilothouse.stats.multiple import adjust, benjamini_hochberg, holm
from pilothouse.stats.paired import paired_comparison, sign_flip_p_value


def test_bca_interval_covers_a_skewed_pass_rate_at_its_nominal_rate() -> None:
    """Pass rate 0.9 on 40 items (skewed, bounded): the 95% interval covers the truth in ~95% of samples."""
    rng = np.random.default_rng(1)
    runs = 400
    covered = 0
    for seed in range(runs):
        sample = (rng.random(40) < 0.9).astype(float)
        found = bootstrap_interval(sample, resamples=1000, seed=seed)
        covered += found.low <= 0.9 <= found.high
    assert 0.91 <= covered / runs <= 0.985, covered / runs


def test_interval_shape_and_degenerate_cases() -> None:
    found = bootstrap_interval([0.2, 0.4, 0.6, 0.8, 1.0] * 10, seed=3)
    assert found.method == "bca" and found.low < 0.6 < found.high and found.estimate == pytest.approx(0.6)
    assert bootstrap_interval([1.0, 1.0, 1.0]).method == "degenerate"
    assert bootstrap_interval([0.5]).to_dict()["low"] == 0.5
    assert bootstrap_interval([0.1, 0.9], seed=1) == bootstrap_interval([0.1, 0.9], seed=1)
    with pytest.raises(ValueError, match="finite"):
        bootstrap_interval([0.1, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        bootstrap_interval([])


def test_median_statistic() -> None:
    found = bootstrap_interval(list(range(101)), statistic=lambda rows: np.median(rows, axis=-1), seed=2)
    assert found.estimate == 50 and found.low < 50 < found.high


def test_exact_sign_flip_p_value() -> None:
    # all 5 differences positive: of the 32 sign patterns only all-plus and all-minus are as extreme
    assert sign_flip_p_value(np.array([1.0, 2.0, 1.0, 3.0, 1.0])) == pytest.approx(2 / 32)
    assert sign_flip_p_value(np.zeros(4)) == 1.0


def test_the_paired_test_holds_its_error_rate_under_no_difference_and_finds_a_real_one() -> None:
    rng = np.random.default_rng(7)
    false_alarms = 0
    runs = 300
    for seed in range(runs):
        difficulty = rng.random(60)  # items differ a lot; the variants do not
        a = (rng.random(60) < difficulty).astype(float)
        b = (rng.random(60) < difficulty).astype(float)
        false_alarms += paired_comparison(a, b, resamples=2000, seed=seed).p_value < 0.05
    assert false_alarms / runs <= 0.075, false_alarms / runs
    difficulty = rng.random(80)  # graded scores: the candidate is 0.08 better on every item, under noise 0.1
    a = difficulty + rng.normal(0, 0.1, 80)
    b = difficulty + 0.08 + rng.normal(0, 0.1, 80)
    found = paired_comparison(a, b, seed=1)
    assert found.p_value < 0.01 and found.difference.low > 0 and found.effect_size > 0.3
    assert found.wins > found.losses and found.wins + found.losses + found.ties == 80
    assert found.difference.estimate == pytest.approx(found.candidate_mean - found.baseline_mean)


def test_paired_comparison_refuses_unpaired_scores() -> None:
    with pytest.raises(ValueError, match="same items"):
        paired_comparison([1.0, 0.0], [1.0])


def test_holm_and_bh_match_hand_computed_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust(p, "none") == p
    with pytest.raises(ValueError, match="unknown correction"):
        adjust(p, "bonferroni-ish")
    with pytest.raises(ValueError, match="between 0 and 1"):
        holm([1.5])
