"""Choosing a deployment, and how long to wait before a retry.

Selection is weighted and latency-aware. Each candidate's share is its configured `weight` times a latency
factor `(fastest / its own) ** sensitivity`, where latencies are the EWMAs of its recent successful calls
(time to first chunk for streams). A deployment never measured counts as fast as the fastest, so a new or
recovered one is tried soon; the factor never drops below `MIN_FACTOR`, so a slow deployment still gets a
share of the traffic and its latency estimate keeps up to date (nothing starves). With sensitivity 0, or
while nothing has been measured, it is plain weighted random choice.

Backoff is exponential with full jitter: the n-th retry (n = 0, 1, ...) waits a uniform random time in
`[0, min(max, base * 2**n)]`; an upstream's Retry-After is a floor on top of that.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pilothouse.gateway.routing.health import DeploymentHealth

MIN_FACTOR = 0.05


def choose(
    weights: Sequence[float],
    healths: Sequence[DeploymentHealth],
    *,
    stream: bool,
    sensitivity: float,
    rng: random.Random,
) -> int:
    """Index of the chosen candidate (weights and healths are parallel, non-empty)."""
    n = len(weights)
    if n == 1:
        return 0
    shares = list(weights)
    if sensitivity > 0:
        latencies = [h.latency(stream) for h in healths]
        known = [v for v in latencies if v is not None]
        if known:
            fastest = min(known)
            for i, value in enumerate(latencies):
                if value is not None:
                    shares[i] *= max((fastest / value) ** sensitivity, MIN_FACTOR)
    point = rng.random() * sum(shares)
    for i, share in enumerate(shares):
        point -= share
        if point < 0:
            return i
    return n - 1


def backoff_delay(retry: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before the `retry`-th retry (0-based)."""
    ceiling = min(cap, base * (2.0 ** min(retry, 30)))
    return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
