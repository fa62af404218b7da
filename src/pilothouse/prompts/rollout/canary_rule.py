"""A canary's rollback rule and its decision: roll back, promote, or continue, from the two arms' samples.

The decision is a pure function of the samples (`decide`), so the monitor, `canary status` and the
benchmark's simulation (bench/canary_sim.py) all run the same code. How it decides (docs/prompt-canary.md):

1. Wait until each arm has `min_samples` values (a plug-in variance needs some data to be trusted).
2. Group the samples into time strata in which both arms are present (`pilothouse.stats.strata`) and
   estimate candidate minus baseline within them, with a variance clustered by end user
   (`pilothouse.stats.clustered`).
3. Run the always-valid one-sided test (`pilothouse.stats.sequential`, a mixture SPRT) against the minimum
   effect: roll back when the always-valid lower bound of "how much worse" is above the minimum effect;
   recommend promotion when the upper bound is below it (the candidate is not worse by more than that);
   otherwise continue. Each conclusion is wrong with probability at most alpha, however often it is checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from pilothouse.prompts.registry.refs import MAX_VERSION
from pilothouse.stats.clustered import DifferenceEstimate, stratified_difference
from pilothouse.stats.effect import MinimumEffect
from pilothouse.stats.sequential import msprt
from pilothouse.stats.strata import time_strata

MetricKind = Literal["score", "error_rate", "cost_per_request", "latency_ms"]
DecisionName = Literal["continue", "rollback", "promote"]
State = Literal["collecting", "watching", "rollback", "promote"]

PLAIN_METRICS: tuple[str, ...] = ("error_rate", "cost_per_request", "latency_ms")
SCORE_PREFIX = "score:"
DEFAULT_MIN_SAMPLES = 10
DEFAULT_ALPHA = 0.05
DEFAULT_BUCKET_S = 60.0
# The mixture's scale, in standard deviations of one sample: effects around a few times this are found with
# the fewest samples (an 80% -> 50% helpful rate is about 0.7 standard deviations).
TAU_SD = 0.5
MIN_PER_STRATUM = 2
# Per metric: (absolute in the metric's unit, relative to the baseline's mean). Documented in prompt-canary.md.
DEFAULT_MIN_EFFECT: dict[MetricKind, tuple[float, float]] = {
    "score": (0.0, 0.05),
    "error_rate": (0.01, 0.0),
    "cost_per_request": (0.0, 0.05),
    "latency_ms": (10.0, 0.05),
}
HIGHER_IS_WORSE: dict[MetricKind, bool] = {
    "score": False,
    "error_rate": True,
    "cost_per_request": True,
    "latency_ms": True,
}
_FIELDS = {"metric", "min_samples", "alpha", "baseline", "min_effect_abs", "min_effect_rel", "bucket_s"}


@dataclass(frozen=True, slots=True)
class RollbackRule:
    """What the monitor judges a canary by. Optional fields left as None take the metric's defaults."""

    metric: str
    min_samples: int = DEFAULT_MIN_SAMPLES
    alpha: float = DEFAULT_ALPHA
    baseline: int | None = None
    min_effect_abs: float | None = None
    min_effect_rel: float | None = None
    bucket_s: float | None = None

    @property
    def kind(self) -> MetricKind:
        if self.metric.startswith(SCORE_PREFIX):
            return "score"
        kind: MetricKind = self.metric  # type: ignore[assignment]  # parse_rule admits only these names
        return kind

    @property
    def score_name(self) -> str | None:
        return self.metric[len(SCORE_PREFIX) :] if self.metric.startswith(SCORE_PREFIX) else None

    @property
    def min_effect(self) -> MinimumEffect:
        absolute, relative = DEFAULT_MIN_EFFECT[self.kind]
        return MinimumEffect(
            absolute if self.min_effect_abs is None else self.min_effect_abs,
            relative if self.min_effect_rel is None else self.min_effect_rel,
        )

    @property
    def bucket_width_s(self) -> float:
        return DEFAULT_BUCKET_S if self.bucket_s is None else self.bucket_s

    def to_dict(self) -> dict[str, Any]:
        """The rule as stored: the fields that were given (defaults stay implicit, so they can improve)."""
        out: dict[str, Any] = {"metric": self.metric, "min_samples": self.min_samples, "alpha": self.alpha}
        for name in ("baseline", "min_effect_abs", "min_effect_rel", "bucket_s"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def effective(self) -> dict[str, Any]:
        """Every setting the decision uses, defaults filled in."""
        return {
            "metric": self.metric,
            "min_samples": self.min_samples,
            "alpha": self.alpha,
            "min_effect": self.min_effect.to_dict(),
            "bucket_s": self.bucket_width_s,
            "tau_sd": TAU_SD,
        }


def _number(raw: dict[str, Any], name: str, low: float, high: float, *, low_open: bool = False) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value > high or value < low or (low_open and value == low):
        where = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a number in {where}, got {value!r}")
    return float(value)


def parse_rule(raw: dict[str, Any]) -> RollbackRule:
    """Validate a rollback rule; ValueError saying what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("a rollback rule is an object with 'metric', 'min_samples' and 'alpha'")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"unknown rollback rule field(s): {', '.join(sorted(unknown))}")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not (
        metric in PLAIN_METRICS or (metric.startswith(SCORE_PREFIX) and len(metric) > len(SCORE_PREFIX))
    ):
        raise ValueError(
            f"rollback metric must be 'score:<score name>', 'error_rate', 'cost_per_request' or 'latency_ms', "
            f"got {metric!r}"
        )
    min_samples = raw.get("min_samples", DEFAULT_MIN_SAMPLES)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or not 2 <= min_samples <= 1_000_000:
        raise ValueError(f"min_samples must be a whole number from 2 to 1000000, got {min_samples!r}")
    alpha = raw.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < float(alpha) <= 0.5:
        raise ValueError(f"alpha must be a number in (0, 0.5], got {alpha!r}")
    baseline = raw.get("baseline")
    if baseline is not None and (
        isinstance(baseline, bool) or not isinstance(baseline, int) or not 1 <= baseline <= MAX_VERSION
    ):
        raise ValueError(f"baseline must be a version number, got {baseline!r}")
    return RollbackRule(
        metric=metric,
        min_samples=min_samples,
        alpha=float(alpha),
        baseline=baseline,
        min_effect_abs=_number(raw, "min_effect_abs", 0.0, 1e12),
        min_effect_rel=_number(raw, "min_effect_rel", 0.0, 100.0),
        bucket_s=_number(raw, "bucket_s", 0.0, 86400.0, low_open=True),
    )


@dataclass(frozen=True, slots=True)
class Samples:
    """One value per trace of both arms: its value, whether it is the candidate's, when it started and the
    cluster it belongs to (the end user, or the trace itself when it has no user)."""

    values: npt.NDArray[np.float64]
    treated: npt.NDArray[np.bool_]
    times: npt.NDArray[np.float64]
    clusters: npt.NDArray[Any]
    caller_errors: dict[str, int] = field(default_factory=dict)  # left out: 4xx caused by the caller

    @classmethod
    def build(
        cls,
        rows: list[tuple[float, bool, float, str]],
        caller_errors: dict[str, int] | None = None,
    ) -> Samples:
        """From (value, is_candidate, started_at, cluster) tuples."""
        return cls(
            values=np.array([r[0] for r in rows], dtype=float),
            treated=np.array([r[1] for r in rows], dtype=bool),
            times=np.array([r[2] for r in rows], dtype=float),
            clusters=np.array([r[3] for r in rows], dtype=object),
            caller_errors=dict(caller_errors or {}),
        )

    def counts(self) -> dict[str, int]:
        candidate = int(self.treated.sum())
        return {"baseline": int(self.treated.size - candidate), "candidate": candidate}


@dataclass(frozen=True, slots=True)
class Decision:
    """A look at a canary: what to do and every number it rests on (the audit details of the decision)."""

    decision: DecisionName
    state: State
    why: str
    rule: RollbackRule
    samples: dict[str, int]
    estimate: DifferenceEstimate | None = None
    min_effect: float | None = None  # the threshold, in the metric's unit (how much worse matters)
    log_lr_rollback: float | None = None
    log_lr_promote: float | None = None
    p_value: float | None = None  # always-valid p of "worse by more than the minimum effect"
    lower: float | None = None  # always-valid bounds on candidate minus baseline, each side at 1 - alpha
    upper: float | None = None
    window: dict[str, Any] = field(default_factory=dict)
    caller_errors: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate
        rule = self.rule
        return {
            "decision": self.decision,
            "state": self.state,
            "why": self.why,
            "metric": rule.metric,
            "worse_when": "higher" if HIGHER_IS_WORSE[rule.kind] else "lower",
            "window": self.window,
            "samples": self.samples,
            "min_samples": rule.min_samples,
            "caller_errors": self.caller_errors,
            "baseline": None if est is None else est.baseline.to_dict(),
            "candidate": None if est is None else est.candidate.to_dict(),
            "difference": None if est is None else est.difference,
            "std_error": None if est is None else math.sqrt(est.variance),
            "interval": None
            if self.lower is None
            else {"lower": _finite(self.lower), "upper": _finite(self.upper), "level": 1.0 - rule.alpha},
            "min_effect": {**rule.min_effect.to_dict(), "threshold": self.min_effect},
            "test": {
                "name": "msprt",
                "alpha": rule.alpha,
                "threshold": -math.log(rule.alpha),
                "tau_sd": TAU_SD,
                "log_lr_rollback": _finite(self.log_lr_rollback),
                "log_lr_promote": _finite(self.log_lr_promote),
                "p_value": self.p_value,
            },
            "strata": None if est is None else est.strata,
            "variance": None
            if est is None
            else {"clustered": est.variance_clustered, "independent": est.variance_independent},
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _g(value: float) -> str:
    return f"{value:.4g}"


def decide(rule: RollbackRule, samples: Samples, *, window: dict[str, Any] | None = None) -> Decision:
    """Roll back, promote or continue (see the module docstring)."""
    counts = samples.counts()
    common: dict[str, Any] = {
        "rule": rule,
        "samples": counts,
        "window": dict(window or {}),
        "caller_errors": samples.caller_errors,
    }
    if min(counts.values()) < rule.min_samples:
        why = (
            f"{counts['baseline']} baseline and {counts['candidate']} candidate samples; waiting for "
            f"{rule.min_samples} of each"
        )
        return Decision("continue", "collecting", why, **common)
    strata = time_strata(samples.times, samples.treated, width_s=rule.bucket_width_s, min_per_arm=MIN_PER_STRATUM)
    est = stratified_difference(samples.values, samples.treated, strata, samples.clusters)
    if est is None:
        why = f"no stretch of {rule.bucket_width_s:g} s buckets holds {MIN_PER_STRATUM} samples of each arm yet"
        return Decision("continue", "collecting", why, **common)
    common["window"] = {**common["window"], "bucket_s": rule.bucket_width_s, "strata": est.strata}
    common["window"]["excluded_samples"] = est.excluded
    sign = 1.0 if HIGHER_IS_WORSE[rule.kind] else -1.0
    worse_by = sign * est.difference
    threshold = rule.min_effect.threshold(est.baseline.mean)
    tau = TAU_SD * est.scale
    against = msprt(worse_by, est.variance, tau=tau, alpha=rule.alpha, null=threshold)
    for_it = msprt(-worse_by, est.variance, tau=tau, alpha=rule.alpha, null=-threshold)
    bound = against.boundary
    lower, upper = est.difference - bound, est.difference + bound
    direction = "higher" if sign > 0 else "lower"
    numbers = (
        f"candidate mean {_g(est.candidate.mean)} (n={est.candidate.n}, {est.candidate.clusters} users) vs "
        f"baseline mean {_g(est.baseline.mean)} (n={est.baseline.n}, {est.baseline.clusters} users), "
        f"{direction} is worse; difference {_g(est.difference)} within {est.strata} time strata, always-valid "
        f"{100 * (1 - rule.alpha):g}% bounds [{_g(lower)}, {_g(upper)}]; minimum effect {_g(threshold)}; "
        f"mSPRT p = {against.p_value:.4g}"
    )
    if against.reject:
        decision: DecisionName = "rollback"
        why = f"{numbers}: worse by more than the minimum effect (p < alpha {rule.alpha:g})"
    elif for_it.reject:
        decision = "promote"
        why = f"{numbers}: not worse by the minimum effect or more (the candidate may be promoted)"
    else:
        decision = "continue"
        why = f"{numbers}: no conclusion yet"
    return Decision(
        decision,
        "watching" if decision == "continue" else decision,
        why,
        estimate=est,
        min_effect=threshold,
        log_lr_rollback=against.log_lr,
        log_lr_promote=for_it.log_lr,
        p_value=against.p_value,
        lower=lower,
        upper=upper,
        **common,
    )
