"""One-sided significance tests for canary rollouts: is the candidate worse than the baseline?

Pure Python (no SciPy): the Student t distribution through the regularized incomplete beta function, the
normal distribution through `math.erfc`, exact hypergeometric sums with integers.

Which test for which metric:
- **Scores** (feedback, online evaluations; higher is better) and **cost per request** (lower is better):
  Welch's t-test on the means. The quantity that matters is the mean (average rating; total spend is
  calls x mean cost), group sizes and variances differ between a 90/10 split's arms, and Welch does not assume
  equal variances. Means of bounded scores are near-normal already at small n.
- **Error rate**: a two-proportion z-test (pooled), one-sided; when an expected count is below 5 the normal
  approximation is poor, so Fisher's exact test (one-sided, hypergeometric) is used instead.
- **Latency**: the Mann-Whitney U test (rank-based, normal approximation with tie and continuity corrections).
  Latency is right-skewed with rare huge outliers (a timeout, a cold start); one outlier can move a mean and
  inflate the variance enough to hide or fake a difference, while ranks measure whether the canary's requests
  are typically slower.

Every test answers one question, "is the canary significantly worse?", and returns a `Comparison`;
`compare_metric` picks the test for a metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Method = Literal["welch_t", "two_proportion_z", "fisher_exact", "mann_whitney_u"]

_EPS = 3e-16
_TINY = 1e-300
_MAX_ITER = 10_000
_NORMAL_DF = 1e7  # above this many degrees of freedom the t distribution is the normal one to ~1e-8


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of one test of canary against baseline."""

    test: Method
    baseline_n: int
    baseline_mean: float
    canary_n: int
    canary_mean: float
    statistic: float
    p_value: float
    alpha: float
    worse: bool
    explanation: str
    df: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # JSON has no infinities; a zero-variance difference is reported as a null statistic.
        if not math.isfinite(self.statistic):
            out["statistic"] = None
        return out


# ------------------------------------------------------------------------------------------ distributions


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError("betainc needs a > 0 and b > 0")
    if not 0.0 <= x <= 1.0:
        raise ValueError("betainc needs 0 <= x <= 1")
    if x == 0.0 or x == 1.0:
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (any real df > 0)."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isnan(t):
        raise ValueError("t is NaN")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if df > _NORMAL_DF:
        return normal_sf(t)
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return tail if t >= 0 else 1.0 - tail


# ------------------------------------------------------------------------------------------ helpers


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _variance(values: Sequence[float], mean: float) -> float:
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _check(values: Sequence[float], what: str, minimum: int) -> None:
    if len(values) < minimum:
        raise ValueError(f"the {what} group needs at least {minimum} values, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"the {what} group has a value that is not a finite number")


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")


def _verdict(p_value: float, alpha: float) -> str:
    if p_value < alpha:
        return f"p = {p_value:.4g} < alpha {alpha:g}: the canary is significantly worse"
    return f"p = {p_value:.4g} >= alpha {alpha:g}: no significant evidence that the canary is worse"


# ------------------------------------------------------------------------------------------ tests


def welch_t_test(
    baseline: Sequence[float], canary: Sequence[float], *, higher_is_worse: bool, alpha: float = 0.05
) -> Comparison:
    """Welch's unequal-variance t-test, one-sided in the direction that makes the canary worse."""
    _check(baseline, "baseline", 2)
    _check(canary, "canary", 2)
    _check_alpha(alpha)
    nb, nc = len(baseline), len(canary)
    mb, mc = _mean(baseline), _mean(canary)
    vb, vc = _variance(baseline, mb) / nb, _variance(canary, mc) / nc
    se2 = vb + vc
    df: float | None
    if se2 == 0.0:
        # Both groups constant: the difference of means is exact.
        statistic = 0.0 if mc == mb else math.copysign(math.inf, mc - mb)
        worse_side = (mc > mb) if higher_is_worse else (mc < mb)
        p_value = 0.0 if worse_side else 1.0
        df = None
    else:
        statistic = (mc - mb) / math.sqrt(se2)
        df = se2 * se2 / (vb * vb / (nb - 1) + vc * vc / (nc - 1))
        p_value = t_sf(statistic if higher_is_worse else -statistic, df)
    direction = "higher" if higher_is_worse else "lower"
    df_text = "" if df is None else f", df = {df:.1f}"
    explanation = (
        f"canary mean {mc:.4g} (n={nc}) vs baseline mean {mb:.4g} (n={nb}), {direction} is worse; "
        f"Welch's t = {statistic:.3f}{df_text}, one-sided {_verdict(p_value, alpha)}"
    )
    return Comparison(
        test="welch_t",
        baseline_n=nb,
        baseline_mean=mb,
        canary_n=nc,
        canary_mean=mc,
        statistic=statistic,
        p_value=p_value,
        alpha=alpha,
        worse=p_value < alpha,
        explanation=explanation,
        df=df,
    )


def fisher_exact_greater(canary_events: int, canary_n: int, baseline_events: int, baseline_n: int) -> float:
    """One-sided Fisher's exact p: P(the canary has >= canary_events of all events | the margins)."""
    total_events = canary_events + baseline_events
    total = canary_n + baseline_n
    denominator = math.comb(total, total_events)
    upper = min(total_events, canary_n)
    numerator = sum(
        math.comb(canary_n, k) * math.comb(baseline_n, total_events - k) for k in range(canary_events, upper + 1)
    )
    return min(1.0, numerator / denominator)


def proportion_test(
    baseline_events: int, baseline_n: int, canary_events: int, canary_n: int, *, alpha: float = 0.05
) -> Comparison:
    """Is the canary's event rate (e.g. errors) significantly higher? Two-proportion z-test, pooled, one-sided;
    Fisher's exact test when an expected cell count is under 5 (the normal approximation is poor there)."""
    for name, events, n in (("baseline", baseline_events, baseline_n), ("canary", canary_events, canary_n)):
        if n < 1 or not 0 <= events <= n:
            raise ValueError(f"the {name} group needs 0 <= events <= n and n >= 1, got {events} of {n}")
    _check_alpha(alpha)
    pb, pc = baseline_events / baseline_n, canary_events / canary_n
    pooled = (baseline_events + canary_events) / (baseline_n + canary_n)
    expected_min = min(n * p for n in (baseline_n, canary_n) for p in (pooled, 1.0 - pooled))
    test: Method
    if pooled in (0.0, 1.0):
        test, statistic, p_value = "two_proportion_z", 0.0, 1.0  # identical all-or-nothing rates: no evidence
        how = "both groups have the same all-or-nothing rate"
    elif expected_min < 5.0:
        test, statistic = "fisher_exact", pc - pb
        p_value = fisher_exact_greater(canary_events, canary_n, baseline_events, baseline_n)
        how = f"Fisher's exact test (an expected count is {expected_min:.2g} < 5)"
    else:
        test = "two_proportion_z"
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / baseline_n + 1.0 / canary_n))
        statistic = (pc - pb) / se
        p_value = normal_sf(statistic)
        how = f"two-proportion z = {statistic:.3f}"
    explanation = (
        f"canary rate {pc:.4g} ({canary_events}/{canary_n}) vs baseline rate {pb:.4g} "
        f"({baseline_events}/{baseline_n}); {how}, one-sided {_verdict(p_value, alpha)}"
    )
    return Comparison(
        test=test,
        baseline_n=baseline_n,
        baseline_mean=pb,
        canary_n=canary_n,
        canary_mean=pc,
        statistic=statistic,
        p_value=p_value,
        alpha=alpha,
        worse=p_value < alpha,
        explanation=explanation,
    )


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Mid-ranks (1-based) of `values`, and the tie term sum(t^3 - t) over groups of ties."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    return ranks, ties


def mann_whitney_u_test(
    baseline: Sequence[float], canary: Sequence[float], *, higher_is_worse: bool, alpha: float = 0.05
) -> Comparison:
    """Mann-Whitney U, one-sided: do the canary's values tend to be worse (stochastically larger when higher is
    worse)? Normal approximation with tie and continuity corrections (sound for n >= 8 per group)."""
    _check(baseline, "baseline", 1)
    _check(canary, "canary", 1)
    _check_alpha(alpha)
    nb, nc = len(baseline), len(canary)
    sign = 1.0 if higher_is_worse else -1.0
    ranks, ties = _ranks([sign * v for v in (*canary, *baseline)])
    u_canary = math.fsum(ranks[:nc]) - nc * (nc + 1) / 2.0  # pairs where the canary is worse (ties count 1/2)
    total = nb + nc
    mu = nb * nc / 2.0
    variance = nb * nc / 12.0 * ((total + 1) - ties / (total * (total - 1))) if total > 1 else 0.0
    if variance <= 0.0:
        statistic, p_value = 0.0, 1.0  # every value tied: no evidence either way
    else:
        statistic = (u_canary - mu - 0.5) / math.sqrt(variance)
        p_value = normal_sf(statistic)
    mb, mc = _mean(baseline), _mean(canary)
    med_b, med_c = _median(baseline), _median(canary)
    direction = "higher" if higher_is_worse else "lower"
    explanation = (
        f"canary median {med_c:.4g}, mean {mc:.4g} (n={nc}) vs baseline median {med_b:.4g}, mean {mb:.4g} "
        f"(n={nb}), {direction} is worse; Mann-Whitney U = {u_canary:g} (z = {statistic:.3f}), "
        f"one-sided {_verdict(p_value, alpha)}"
    )
    return Comparison(
        test="mann_whitney_u",
        baseline_n=nb,
        baseline_mean=mb,
        canary_n=nc,
        canary_mean=mc,
        statistic=u_canary,
        p_value=p_value,
        alpha=alpha,
        worse=p_value < alpha,
        explanation=explanation,
    )


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


MetricKind = Literal["score", "error_rate", "cost_per_request", "latency_ms"]


def compare_metric(
    kind: MetricKind, baseline: Sequence[float], canary: Sequence[float], *, alpha: float = 0.05
) -> Comparison:
    """Compare one metric's per-trace values with the test that suits it (see the module docstring).

    score: higher is better; error_rate: values are 1 (error) or 0; cost_per_request, latency_ms: lower is better.
    """
    if kind == "score":
        return welch_t_test(baseline, canary, higher_is_worse=False, alpha=alpha)
    if kind == "cost_per_request":
        return welch_t_test(baseline, canary, higher_is_worse=True, alpha=alpha)
    if kind == "latency_ms":
        return mann_whitney_u_test(baseline, canary, higher_is_worse=True, alpha=alpha)
    if kind == "error_rate":
        return proportion_test(
            sum(1 for v in baseline if v), len(baseline), sum(1 for v in canary if v), len(canary), alpha=alpha
        )
    raise ValueError(f"unknown metric kind {kind!r}")
