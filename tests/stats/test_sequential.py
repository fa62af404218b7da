"""The mixture SPRT: its formulas against direct integration, and its guarantee by simulation (seeded): with
50 looks at every sequence, a true null is rejected at most alpha of the time, and clear effects are found."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilothouse.stats.sequential import log_mixture_lr, mixture_boundary, msprt


def test_the_closed_form_matches_the_mixture_integral() -> None:
    # Lambda = int_0^inf 2 phi(theta / tau) / tau * exp((theta x - theta^2 / 2) / V) dtheta, numerically
    for x, variance, tau in ((0.3, 0.01, 0.2), (-0.1, 0.04, 0.5), (2.0, 1.0, 0.7)):
        theta = np.linspace(0.0, 12 * tau, 400_001)
        density = 2.0 / (tau * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (theta / tau) ** 2)
        integrand = density * np.exp((theta * x - theta**2 / 2.0) / variance)
        direct = float(np.sum((integrand[1:] + integrand[:-1]) / 2.0 * np.diff(theta)))
        closed = math.exp(log_mixture_lr(x / math.sqrt(variance), tau * tau / variance))
        assert closed == pytest.approx(direct, rel=1e-5)


def test_the_boundary_is_where_the_test_starts_rejecting() -> None:
    variance, tau, alpha = 0.02, 0.3, 0.05
    b = mixture_boundary(variance, tau * tau, alpha)
    assert msprt(b * 1.001, variance, tau=tau, alpha=alpha).reject
    assert not msprt(b * 0.999, variance, tau=tau, alpha=alpha).reject
    shifted = msprt(0.5 + b * 1.001, variance, tau=tau, alpha=alpha, null=0.5)
    assert shifted.reject and shifted.lower == pytest.approx(0.5 + b * 0.001)
    # always-valid bounds are wider than a fixed-sample one-sided 95% bound (1.645 standard errors)
    assert b > 1.645 * math.sqrt(variance)


def test_edge_cases() -> None:
    assert not msprt(0.0, 0.0, tau=1.0, alpha=0.05).reject  # no difference, no variance
    assert msprt(0.1, 0.0, tau=1.0, alpha=0.05).reject  # an exact difference
    assert not msprt(5.0, 1.0, tau=0.0, alpha=0.05).reject  # a zero mixture never rejects
    assert msprt(-50.0, 1.0, tau=1.0, alpha=0.05).p_value == 1.0  # deep in the null: no overflow
    assert msprt(60.0, 1.0, tau=1.0, alpha=0.05).p_value < 1e-100
    with pytest.raises(ValueError, match="alpha"):
        msprt(1.0, 1.0, tau=1.0, alpha=1.5)
    with pytest.raises(ValueError, match="estimate"):
        msprt(math.nan, 1.0, tau=1.0, alpha=0.05)
    assert msprt(1.0, 1.0, tau=1.0, alpha=0.05).to_dict()["test"] == "msprt"


def _first_rejection(rng: np.random.Generator, effect: float, looks: int, per_look: int, alpha: float) -> int | None:
    """Two arms of N(0, 1) and N(effect, 1) samples; the look at which the test first rejects effect <= 0."""
    a = rng.normal(0.0, 1.0, looks * per_look)
    b = rng.normal(effect, 1.0, looks * per_look)
    for look in range(1, looks + 1):
        n = look * per_look
        x = b[:n].mean() - a[:n].mean()
        variance = b[:n].var(ddof=1) / n + a[:n].var(ddof=1) / n
        if msprt(x, variance, tau=0.5, alpha=alpha).reject:
            return look
    return None


def test_repeated_looks_keep_the_false_positive_rate_at_alpha() -> None:
    """200 null sequences, 50 looks each: a fixed 5% test at every look would reject ~25% of them."""
    rng = np.random.default_rng(20240610)
    alpha = 0.05
    rejected = sum(_first_rejection(rng, 0.0, looks=50, per_look=10, alpha=alpha) is not None for _ in range(200))
    assert rejected / 200 <= alpha + 0.03, rejected  # 0.03: about two binomial standard errors of slack
    naive = 0
    for _ in range(200):  # the same looks with a fixed-alpha z-test: the problem the mSPRT solves
        a, b = rng.normal(size=500), rng.normal(size=500)
        for n in range(10, 501, 10):
            z = (b[:n].mean() - a[:n].mean()) / math.sqrt((b[:n].var(ddof=1) + a[:n].var(ddof=1)) / n)
            if z > 1.645:
                naive += 1
                break
    assert naive / 200 > 2 * alpha


def test_clear_effects_are_found() -> None:
    rng = np.random.default_rng(7)
    found = [_first_rejection(rng, 0.5, looks=50, per_look=10, alpha=0.05) for _ in range(100)]
    assert sum(f is not None for f in found) >= 95
    assert float(np.median([f for f in found if f is not None])) <= 8  # within 80 samples per arm
