"""Per-deployment health: a circuit breaker, the upstream's Retry-After, and recent latency.

State lives in this process (each replica learns a deployment's health from its own calls). The clock is
injected (monotonic seconds) so the state machine is tested without waiting.

Circuit breaker, per deployment:

* **closed**: calls go through; each failure that is the deployment's fault (rate limit, timeout,
  unavailable, 5xx, auth) adds one to a count of consecutive failures, any success resets it. At
  `breaker_failures` the circuit opens.
* **open**: the deployment is skipped until `breaker_cooldown_s` have passed.
* **half-open**: after the cooldown exactly one request may probe it; others keep skipping it. The probe's
  success closes the circuit, its failure opens it for another cooldown. A probe that never reports (its
  request was cancelled) is released, and one older than a cooldown no longer blocks a new probe.

A 429 with `Retry-After` also sets `not_before`: the deployment is not called before then by any request.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pilothouse.config import RoutingSettings

# Failures that say something about the deployment (not about the request).
COUNTED_KINDS = frozenset({"rate_limit", "timeout", "unavailable", "upstream", "auth"})
_MIN_LATENCY_MS = 1.0


@dataclass(slots=True)
class DeploymentHealth:
    label: str
    failures: int = 0  # consecutive
    open_until: float = 0.0  # 0.0: closed; else the circuit is open (or half-open once this has passed)
    probe_since: float | None = None  # a half-open probe is in flight since then
    not_before: float = 0.0  # upstream Retry-After
    latency_ms: float | None = None  # EWMA of successful whole calls
    ttft_ms: float | None = None  # EWMA of time to the first chunk of successful streams

    @property
    def closed(self) -> bool:
        return self.open_until == 0.0

    def latency(self, stream: bool) -> float | None:
        """The EWMA for this kind of call, else the other kind's, else None (never measured)."""
        if stream:
            return self.ttft_ms if self.ttft_ms is not None else self.latency_ms
        return self.latency_ms if self.latency_ms is not None else self.ttft_ms


class HealthBook:
    """The health of every deployment this process routes to, and the rules that update it."""

    def __init__(self, settings: RoutingSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self._by_id: dict[int, DeploymentHealth] = {}

    def register(self, key: int, label: str) -> DeploymentHealth:
        health = self._by_id.get(key)
        if health is None:
            health = self._by_id[key] = DeploymentHealth(label)
        return health

    def get(self, key: int) -> DeploymentHealth | None:
        return self._by_id.get(key)

    def ready_in(self, health: DeploymentHealth, now: float) -> float:
        """Seconds until a call may go to the deployment: 0 now, > 0 after a Retry-After, inf while its
        circuit is open or another request is probing it."""
        if health.open_until:
            if now < health.open_until:
                return math.inf
            probe = health.probe_since
            if probe is not None and now - probe < self.settings.breaker_cooldown_s:
                return math.inf
        return max(health.not_before - now, 0.0)

    def acquire(self, health: DeploymentHealth, now: float) -> None:
        """A call is about to go out: a half-open deployment becomes this request's probe."""
        if health.open_until:
            health.probe_since = now

    def release(self, health: DeploymentHealth) -> None:
        """The call ended without an outcome (cancelled): let another request probe."""
        health.probe_since = None

    def success(self, health: DeploymentHealth, elapsed_ms: float, *, stream: bool) -> None:
        health.failures = 0
        health.open_until = 0.0
        health.probe_since = None
        sample = max(elapsed_ms, _MIN_LATENCY_MS)
        alpha = self.settings.latency_alpha
        if stream:
            old = health.ttft_ms
            health.ttft_ms = sample if old is None else old + alpha * (sample - old)
        else:
            old = health.latency_ms
            health.latency_ms = sample if old is None else old + alpha * (sample - old)

    def failure(self, health: DeploymentHealth, kind: str, retry_after: float | None, now: float) -> None:
        """Record a failed call; `ready_in` reflects the new state."""
        if kind == "rate_limit" and retry_after:
            health.not_before = max(health.not_before, now + retry_after)
        if kind not in COUNTED_KINDS:
            health.probe_since = None
            return
        health.failures += 1
        threshold = self.settings.breaker_failures
        was_probe = health.probe_since is not None
        health.probe_since = None
        if threshold and (was_probe or health.open_until or health.failures >= threshold):
            health.open_until = now + self.settings.breaker_cooldown_s
