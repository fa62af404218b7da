"""The mixture sequential probability ratio test (mSPRT) for a difference of means, one-sided.

Why: a fixed-alpha test repeated at every look (the canary monitor looks every 30 s) rejects a true null far
more often than alpha. The mSPRT (Robbins 1970; Johari, Pekelis and Walsh, "Always valid inference", 2017)
is valid however often and whenever one looks: under the null, the probability that it *ever* rejects is at
most alpha (Ville's inequality for the mixture likelihood ratio, a nonnegative supermartingale).

How: the estimate `x` of an effect (e.g. candidate mean minus baseline mean) is treated as normal with
variance `V` (the central limit theorem; `V` shrinks as samples arrive). For a true effect theta the
likelihood ratio against the null `theta0` is exp((theta - theta0) x'/V - (theta - theta0)^2 / (2V)) with
x' = x - theta0. Mixing theta - theta0 over a half-normal of scale `tau` on the alternative side (effects
> 0 only: this test asks "is it worse?") gives, with z = x'/sqrt(V) and r = tau^2/V,

    Lambda = 2 / sqrt(1 + r) * exp(r z^2 / (2 (1 + r))) * Phi(z sqrt(r / (1 + r)))

and the test rejects when Lambda >= 1/alpha. Lambda grows with x, so the rejection region is x > theta0 +
`mixture_boundary(V, tau^2, alpha)`: the same boundary read the other way gives always-valid one-sided
confidence bounds x - b (lower) and x + b (upper), each holding at every look with probability 1 - alpha.
The null may be composite (theta <= theta0): for theta < theta0 the ratio is a supermartingale too.

`tau` sets which effects the test finds fastest: those near a few times tau are found with the fewest
samples; far larger effects are found within a handful of samples anyway. With the plug-in `V` the guarantee
is asymptotic; callers wait for a minimum sample size (`min_samples`) before the first look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_LOG_2PI = math.log(2.0 * math.pi)


def _log_normal_cdf(u: float) -> float:
    """log Phi(u), accurate far into the lower tail (where Phi underflows)."""
    if u > -30.0:
        return math.log(0.5 * math.erfc(-u / math.sqrt(2.0)))
    return -0.5 * u * u - math.log(-u) - 0.5 * _LOG_2PI  # Mills ratio, relative error < 1e-3 here


def log_mixture_lr(z: float, r: float) -> float:
    """log Lambda for the standardized estimate z = (x - theta0)/sqrt(V) and r = tau^2 / V (see the module)."""
    if r <= 0.0:
        return 0.0
    shrink = r / (1.0 + r)
    return math.log(2.0) - 0.5 * math.log1p(r) + 0.5 * shrink * z * z + _log_normal_cdf(z * math.sqrt(shrink))


def _standard_boundary(r: float, alpha: float) -> float:
    """The z at which log Lambda(z, r) reaches log(1/alpha) (bisection; Lambda increases with z)."""
    target = -math.log(alpha)
    lo, hi = 0.0, 4.0
    while log_mixture_lr(hi, r) < target:
        lo, hi = hi, hi * 2.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if log_mixture_lr(mid, r) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * hi:
            break
    return hi


def mixture_boundary(variance: float, tau2: float, alpha: float) -> float:
    """How far above the null the estimate must be for the mSPRT to reject at `alpha` (inf when it cannot)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if variance < 0.0 or tau2 < 0.0 or not (math.isfinite(variance) and math.isfinite(tau2)):
        raise ValueError("variance and tau^2 must be finite and not negative")
    if tau2 == 0.0:
        return math.inf
    if variance == 0.0:
        return 0.0  # an exact estimate: any excess over the null is conclusive
    sd = math.sqrt(variance)
    return sd * _standard_boundary(tau2 / variance, alpha)


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """One look of the one-sided mSPRT of H0: effect <= null against effect > null.

    `lower`/`upper` are the always-valid one-sided bounds on the effect (each at 1 - alpha); `p_value` is the
    always-valid p-value of this look (1/Lambda, at most 1); `reject` is `log_lr >= threshold`."""

    estimate: float
    std_error: float
    null: float
    tau: float
    alpha: float
    log_lr: float
    threshold: float
    p_value: float
    reject: bool
    lower: float
    upper: float

    @property
    def boundary(self) -> float:
        return self.estimate - self.lower

    def to_dict(self) -> dict[str, Any]:
        def finite(value: float) -> float | None:  # JSON has no infinities
            return value if math.isfinite(value) else None

        return {
            "test": "msprt",
            "estimate": self.estimate,
            "std_error": self.std_error,
            "null": self.null,
            "tau": self.tau,
            "alpha": self.alpha,
            "log_likelihood_ratio": finite(self.log_lr),
            "threshold": self.threshold,
            "p_value": self.p_value,
            "reject": self.reject,
            "lower": finite(self.lower),
            "upper": finite(self.upper),
        }


def msprt(estimate: float, variance: float, *, tau: float, alpha: float, null: float = 0.0) -> SequentialTest:
    """The one-sided mSPRT of `effect <= null` for an estimate with this variance (see the module docstring)."""
    for name, value in (("estimate", estimate), ("null", null), ("tau", tau)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if tau < 0:
        raise ValueError(f"tau must not be negative, got {tau}")
    boundary = mixture_boundary(variance, tau * tau, alpha)
    threshold = -math.log(alpha)
    excess = estimate - null
    if variance == 0.0 or tau == 0.0:
        log_lr = math.inf if (variance == 0.0 and tau > 0.0 and excess > 0.0) else 0.0
    else:
        log_lr = log_mixture_lr(excess / math.sqrt(variance), tau * tau / variance)
    return SequentialTest(
        estimate=estimate,
        std_error=math.sqrt(variance),
        null=null,
        tau=tau,
        alpha=alpha,
        log_lr=log_lr,
        threshold=threshold,
        p_value=1.0 if log_lr <= 0.0 else math.exp(-log_lr),
        reject=log_lr >= threshold,
        lower=estimate - boundary,
        upper=estimate + boundary,
    )
