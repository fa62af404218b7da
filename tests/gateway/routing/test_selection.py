"""Weighted, latency-aware choice and full-jitter backoff."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pilothouse.gateway.routing.health import DeploymentHealth
from pilothouse.gateway.routing.selection import MIN_FACTOR, backoff_delay, choose


def shares(
    weights: list[float], healths: list[DeploymentHealth], sensitivity: float = 1.0, n: int = 20_000
) -> list[float]:
    rng = random.Random(1)
    counts = Counter(choose(weights, healths, stream=False, sensitivity=sensitivity, rng=rng) for _ in range(n))
    return [counts[i] / n for i in range(len(weights))]


def health(latency_ms: float | None = None, ttft_ms: float | None = None) -> DeploymentHealth:
    return DeploymentHealth("d", latency_ms=latency_ms, ttft_ms=ttft_ms)


def test_single_candidate_needs_no_random() -> None:
    class NoRandom(random.Random):
        def random(self) -> float:
            raise AssertionError("not needed for one candidate")

    assert choose([1.0], [health()], stream=False, sensitivity=1.0, rng=NoRandom()) == 0


def test_weights_without_latency_data() -> None:
    got = shares([3.0, 1.0], [health(), health()])
    assert got[0] == pytest.approx(0.75, abs=0.02)


def test_faster_deployment_gets_a_share_inverse_to_latency() -> None:
    got = shares([1.0, 1.0], [health(100.0), health(300.0)])
    assert got[0] == pytest.approx(0.75, abs=0.02)  # 1 : 1/3


def test_unmeasured_counts_as_fastest_so_it_is_explored() -> None:
    got = shares([1.0, 1.0], [health(100.0), health()])
    assert got[1] == pytest.approx(0.5, abs=0.02)


def test_slow_deployment_is_never_starved() -> None:
    got = shares([1.0, 1.0], [health(10.0), health(100_000.0)])
    expected = MIN_FACTOR / (1 + MIN_FACTOR)
    assert got[1] == pytest.approx(expected, abs=0.01)
    assert got[1] > 0


def test_sensitivity_zero_is_plain_weights() -> None:
    got = shares([1.0, 1.0], [health(10.0), health(1000.0)], sensitivity=0.0)
    assert got[0] == pytest.approx(0.5, abs=0.02)


def test_streams_use_time_to_first_chunk() -> None:
    rng = random.Random(3)
    healths = [health(latency_ms=10.0, ttft_ms=500.0), health(latency_ms=500.0, ttft_ms=10.0)]
    picks = Counter(choose([1.0, 1.0], healths, stream=True, sensitivity=1.0, rng=rng) for _ in range(5000))
    assert picks[1] > picks[0] * 10


class Top(random.Random):
    """uniform(a, b) returns b: the backoff ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, base=0.25, cap=2.0, rng=Top()) for n in range(6)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert backoff_delay(10_000, base=0.25, cap=2.0, rng=Top()) == 2.0


def test_backoff_is_full_jitter() -> None:
    rng = random.Random(5)
    samples = [backoff_delay(2, base=0.25, cap=10.0, rng=rng) for _ in range(2000)]
    assert min(samples) >= 0.0 and max(samples) <= 1.0
    assert min(samples) < 0.05 and max(samples) > 0.95  # spread over the whole range
    assert backoff_delay(3, base=0.0, cap=10.0, rng=rng) == 0.0
