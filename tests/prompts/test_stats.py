"""The significance tests of canary rollbacks against closed forms, published examples, exact enumeration and
simulation (the false-alarm rate under no difference is alpha)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from pilothouse.prompts.stats import (
    betainc,
    compare_metric,
    fisher_exact_greater,
    mann_whitney_u_test,
    normal_sf,
    proportion_test,
    t_sf,
    welch_t_test,
)

# ------------------------------------------------------------------------------------ distributions


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [
        (2.0, 10, 0.036694017385370),  # the usual t table: one-sided p at t = 2, df = 10
        (1.0, 5, 0.181608733824562),
        (1.812461123, 10, 0.05),  # the tabled one-sided 5% critical value
        (2.228138852, 10, 0.025),
        (12.70620474, 1, 0.025),
        (3.182446305, 3, 0.025),
        (0.0, 7, 0.5),
    ],
)
def test_t_tail_matches_tables(t: float, df: float, expected: float) -> None:
    assert t_sf(t, df) == pytest.approx(expected, rel=1e-7)
    assert t_sf(-t, df) == pytest.approx(1.0 - expected, rel=1e-7)


@pytest.mark.parametrize("t", [-30.0, -2.5, -0.3, 0.0, 0.7, 1.0, 4.0, 55.0])
def test_t_tail_matches_the_closed_forms_for_one_and_two_degrees_of_freedom(t: float) -> None:
    assert t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-10, abs=1e-15)  # Cauchy
    assert t_sf(t, 2) == pytest.approx(0.5 - t / (2.0 * math.sqrt(2.0 + t * t)), rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("df", [3.7, 9.9, 24.99])
def test_t_tail_matches_numerical_integration_for_fractional_df(df: float) -> None:
    """Welch's degrees of freedom are fractional; integrate the density independently."""
    grid = np.linspace(-60.0, 60.0, 1_200_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_c - (df + 1) / 2 * np.log1p(grid * grid / df))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    for t in (-1.5, 0.4, 1.7, 2.9):
        below = 1.0 - t_sf(-60.0, df)  # the mass below the grid
        numeric_sf = 1.0 - below - float(np.interp(t, grid, cdf))
        assert t_sf(t, df) == pytest.approx(numeric_sf, abs=2e-6)


def test_large_df_is_the_normal_distribution() -> None:
    for z in (-1.0, 0.5, 1.6448536269514722, 3.0):
        # the t tail is heavier by phi(z) (z^3 + z) / (4 df) to first order (Cornish-Fisher)
        phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        assert t_sf(z, 1e6) == pytest.approx(normal_sf(z) + phi * (z**3 + z) / 4e6, abs=1e-9)
        assert t_sf(z, 1e9) == pytest.approx(normal_sf(z), rel=1e-9)
    assert normal_sf(1.6448536269514722) == pytest.approx(0.05, rel=1e-12)
    assert t_sf(math.inf, 4) == 0.0 and t_sf(-math.inf, 4) == 1.0


def test_incomplete_beta_identities() -> None:
    for x in (0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0):
        assert betainc(1, 1, x) == pytest.approx(x, abs=1e-14)
        assert betainc(3.5, 1, x) == pytest.approx(x**3.5, abs=1e-14)
        assert betainc(1, 2.5, x) == pytest.approx(1 - (1 - x) ** 2.5, abs=1e-14)
        assert betainc(2.2, 7.5, x) == pytest.approx(1 - betainc(7.5, 2.2, 1 - x), abs=1e-13)
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5, abs=1e-14)  # arcsine distribution
    assert betainc(5e5, 0.5, 0.999999) == pytest.approx(2 * t_sf(math.sqrt(1e6 * 1e-6 / 0.999999), 1e6), rel=1e-6)
    with pytest.raises(ValueError):
        betainc(0, 1, 0.5)
    with pytest.raises(ValueError):
        betainc(1, 1, 1.5)


# ------------------------------------------------------------------------------------ Welch


def test_welch_reproduces_the_published_examples() -> None:
    """Wikipedia's Welch's t-test examples 1 and 2 (t, degrees of freedom, two-sided p)."""
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    res = welch_t_test(a2, a1, higher_is_worse=False, alpha=0.05)  # canary a1 has the lower mean
    assert res.statistic == pytest.approx(-2.46, abs=0.005)
    assert res.df == pytest.approx(25.0, abs=0.1)
    assert 2 * res.p_value == pytest.approx(0.021, abs=0.0005)
    assert res.worse and res.test == "welch_t"
    assert (res.baseline_n, res.canary_n) == (15, 15)
    assert res.canary_mean == pytest.approx(sum(a1) / 15)

    b1 = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8]
    b2 = [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8]
    b2 += [20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8]
    res = welch_t_test(b2, b1, higher_is_worse=False)
    assert res.statistic == pytest.approx(-1.57, abs=0.005)
    assert res.df == pytest.approx(9.9, abs=0.05)
    assert 2 * res.p_value == pytest.approx(0.149, abs=0.0005)
    assert not res.worse  # one-sided p 0.074 > 0.05


def test_welch_direction() -> None:
    low, high = [1.0, 2.0, 3.0, 2.0, 1.5] * 3, [4.0, 5.0, 6.0, 5.0, 4.5] * 3
    assert welch_t_test(low, high, higher_is_worse=True).worse  # canary costs more
    assert not welch_t_test(low, high, higher_is_worse=False).worse  # canary scores higher: better
    better = welch_t_test(low, high, higher_is_worse=False)
    assert better.p_value > 0.99 and "no significant evidence" in better.explanation


def test_welch_with_constant_groups() -> None:
    """All baseline feedback 1, all canary 0: the difference is exact (p = 0); equal constants: no evidence."""
    res = welch_t_test([1.0] * 8, [0.0] * 8, higher_is_worse=False)
    assert res.worse and res.p_value == 0.0 and res.statistic == -math.inf and res.df is None
    assert res.to_dict()["statistic"] is None  # JSON has no infinity
    same = welch_t_test([1.0] * 8, [1.0] * 8, higher_is_worse=False)
    assert not same.worse and same.p_value == 1.0 and same.statistic == 0.0
    # one constant group is an ordinary case
    mixed = welch_t_test([1.0] * 10, [1.0, 0.0] * 5, higher_is_worse=False)
    assert mixed.df == pytest.approx(9.0) and mixed.worse


def test_welch_needs_two_values_and_finite_numbers() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        welch_t_test([1.0], [1.0, 2.0], higher_is_worse=True)
    with pytest.raises(ValueError, match="finite"):
        welch_t_test([1.0, math.nan], [1.0, 2.0], higher_is_worse=True)
    with pytest.raises(ValueError, match="alpha"):
        welch_t_test([1.0, 2.0], [1.0, 2.0], higher_is_worse=True, alpha=0)


# ------------------------------------------------------------------------------------ proportions


def _fisher_by_enumeration(canary_events: int, canary_n: int, baseline_events: int, baseline_n: int) -> Fraction:
    """Every way of dealing the events over the pooled requests; count those at least as bad for the canary."""
    total = canary_n + baseline_n
    events = canary_events + baseline_events
    hits = outcomes = 0
    for chosen in itertools.combinations(range(total), events):
        outcomes += 1
        if sum(1 for i in chosen if i < canary_n) >= canary_events:
            hits += 1
    return Fraction(hits, outcomes)


@pytest.mark.parametrize(
    ("ce", "cn", "be", "bn"), [(4, 4, 0, 4), (3, 5, 0, 5), (2, 7, 1, 6), (0, 6, 2, 6), (5, 9, 5, 9)]
)
def test_fisher_exact_matches_enumeration(ce: int, cn: int, be: int, bn: int) -> None:
    assert fisher_exact_greater(ce, cn, be, bn) == pytest.approx(float(_fisher_by_enumeration(ce, cn, be, bn)))


def test_fisher_is_used_for_small_expected_counts() -> None:
    tea = proportion_test(0, 4, 4, 4)  # the lady tasting tea: 1 / 70
    assert tea.test == "fisher_exact" and tea.p_value == pytest.approx(1 / 70) and tea.worse
    small = proportion_test(1, 20, 6, 20)
    assert small.test == "fisher_exact" and small.worse
    assert "Fisher" in small.explanation and "6/20" in small.explanation


def test_two_proportion_z_test() -> None:
    res = proportion_test(10, 100, 25, 100)
    pooled = 35 / 200
    z = 0.15 / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert res.test == "two_proportion_z"
    assert res.statistic == pytest.approx(z) and z == pytest.approx(2.7915, abs=1e-4)
    assert res.p_value == pytest.approx(normal_sf(z)) and res.p_value == pytest.approx(0.002624, abs=1e-6)
    assert res.worse and res.canary_mean == 0.25 and res.baseline_mean == 0.1
    assert not proportion_test(25, 100, 10, 100).worse  # fewer errors in the canary
    none = proportion_test(0, 50, 0, 50)
    assert not none.worse and none.p_value == 1.0
    with pytest.raises(ValueError):
        proportion_test(3, 2, 0, 5)


# ------------------------------------------------------------------------------------ Mann-Whitney U


def test_mann_whitney_matches_scipys_documented_example() -> None:
    """SciPy's docs: males vs females, U = 17, asymptotic two-sided p = 0.11134688653314041."""
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    res = mann_whitney_u_test([float(v) for v in females], [float(v) for v in males], higher_is_worse=True)
    assert res.statistic == 17.0
    assert res.p_value == pytest.approx(0.11134688653314041 / 2, rel=1e-12)
    flipped = mann_whitney_u_test([float(v) for v in males], [float(v) for v in females], higher_is_worse=False)
    assert flipped.p_value == pytest.approx(res.p_value, rel=1e-12)


def test_mann_whitney_ties_and_direction() -> None:
    baseline = [100.0, 110.0, 120.0, 120.0, 130.0, 140.0, 150.0, 160.0, 110.0, 125.0]
    slower = [v + 60.0 for v in baseline]
    res = mann_whitney_u_test(baseline, slower, higher_is_worse=True)
    assert res.worse and res.test == "mann_whitney_u"
    # by hand: tie-corrected variance, continuity correction
    ranks_u = sum(1.0 if c > b else 0.5 if c == b else 0.0 for c in slower for b in baseline)
    assert res.statistic == ranks_u
    assert not mann_whitney_u_test(slower, baseline, higher_is_worse=True).worse
    all_tied = mann_whitney_u_test([5.0] * 9, [5.0] * 9, higher_is_worse=True)
    assert all_tied.p_value == 1.0 and not all_tied.worse


def test_mann_whitney_ignores_a_single_huge_outlier() -> None:
    """One timeout in the baseline inflates its mean; ranks still see the canary as slower."""
    rng = np.random.default_rng(7)
    baseline = list(rng.lognormal(5.0, 0.2, 30))
    canary = [v * 1.4 for v in rng.lognormal(5.0, 0.2, 30)]
    baseline[0] = 60_000.0
    assert mann_whitney_u_test(baseline, canary, higher_is_worse=True).worse
    assert not welch_t_test(baseline, canary, higher_is_worse=True).worse  # the mean test is fooled


# ------------------------------------------------------------------------------------ calibration


def test_false_alarm_rate_is_alpha_when_nothing_changed() -> None:
    """Under no difference, each test calls the canary worse in about alpha of the experiments."""
    rng = np.random.default_rng(2024)
    runs = 2000
    welch = mwu = prop = 0
    for _ in range(runs):
        a, b = rng.normal(0.6, 0.3, 25).tolist(), rng.normal(0.6, 0.3, 15).tolist()
        welch += welch_t_test(a, b, higher_is_worse=False).worse
        la, lb = rng.lognormal(6, 0.5, 20).tolist(), rng.lognormal(6, 0.5, 20).tolist()
        mwu += mann_whitney_u_test(la, lb, higher_is_worse=True).worse
        prop += proportion_test(int(rng.binomial(200, 0.1)), 200, int(rng.binomial(200, 0.1)), 200).worse
    assert 0.035 <= welch / runs <= 0.065
    assert 0.03 <= mwu / runs <= 0.065
    assert 0.025 <= prop / runs <= 0.065


def test_power_against_a_clear_regression() -> None:
    rng = np.random.default_rng(5)
    detected = sum(
        welch_t_test(rng.normal(0.8, 0.2, 20).tolist(), rng.normal(0.5, 0.2, 20).tolist(), higher_is_worse=False).worse
        for _ in range(200)
    )
    assert detected >= 190


def test_compare_metric_picks_the_test() -> None:
    base, cand = [1.0, 0.0, 1.0, 1.0] * 5, [0.0, 0.0, 1.0, 0.0] * 5
    assert compare_metric("score", base, cand).test == "welch_t"
    assert compare_metric("score", base, cand).worse  # lower scores are worse
    assert compare_metric("cost_per_request", cand, base).test == "welch_t"
    assert compare_metric("cost_per_request", cand, base).worse  # higher cost is worse
    assert compare_metric("latency_ms", cand, base).test == "mann_whitney_u"
    errors = compare_metric("error_rate", cand, base)  # 1 = error
    assert errors.test in ("two_proportion_z", "fisher_exact")
    assert errors.baseline_mean == 0.25 and errors.canary_mean == 0.75 and errors.worse
    with pytest.raises(ValueError):
        compare_metric("bogus", base, cand)  # type: ignore[arg-type]
