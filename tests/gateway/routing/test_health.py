"""The circuit breaker, Retry-After and latency EWMA of one deployment."""

from __future__ import annotations

import math

import pytest

from pilothouse.config import RoutingSettings
from pilothouse.gateway.routing.health import DeploymentHealth, HealthBook

from .helpers import FakeClock


def book(**settings: float) -> tuple[HealthBook, DeploymentHealth, FakeClock]:
    clock = FakeClock()
    hb = HealthBook(RoutingSettings(**settings), clock)  # type: ignore[arg-type]
    return hb, hb.register(1, "d"), clock


def test_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    hb, h, clock = book(breaker_failures=3, breaker_cooldown_s=10)
    hb.failure(h, "unavailable", None, clock())
    hb.failure(h, "timeout", None, clock())
    hb.success(h, 5.0, stream=False)
    hb.failure(h, "upstream", None, clock())
    hb.failure(h, "upstream", None, clock())
    assert h.closed and hb.ready_in(h, clock()) == 0.0
    hb.failure(h, "upstream", None, clock())
    assert not h.closed and hb.ready_in(h, clock()) == math.inf


def test_request_faults_do_not_count() -> None:
    hb, h, clock = book(breaker_failures=1)
    hb.failure(h, "bad_request", None, clock())
    hb.failure(h, "context_window", None, clock())
    assert h.closed and h.failures == 0


def test_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    hb, h, clock = book(breaker_failures=1, breaker_cooldown_s=10)
    hb.failure(h, "unavailable", None, clock())
    clock.advance(9.9)
    assert hb.ready_in(h, clock()) == math.inf
    clock.advance(0.2)
    assert hb.ready_in(h, clock()) == 0.0  # half-open
    hb.acquire(h, clock())
    assert hb.ready_in(h, clock()) == math.inf  # a probe is in flight: others keep away
    hb.success(h, 20.0, stream=False)
    assert h.closed and hb.ready_in(h, clock()) == 0.0 and h.failures == 0


def test_failed_probe_reopens_for_another_cooldown() -> None:
    hb, h, clock = book(breaker_failures=2, breaker_cooldown_s=10)
    hb.failure(h, "unavailable", None, clock())
    hb.failure(h, "unavailable", None, clock())
    clock.advance(10)
    hb.acquire(h, clock())
    hb.failure(h, "timeout", None, clock())
    assert hb.ready_in(h, clock()) == math.inf
    clock.advance(10)
    assert hb.ready_in(h, clock()) == 0.0


def test_cancelled_or_stale_probe_does_not_block_forever() -> None:
    hb, h, clock = book(breaker_failures=1, breaker_cooldown_s=10)
    hb.failure(h, "unavailable", None, clock())
    clock.advance(10)
    hb.acquire(h, clock())
    hb.release(h)
    assert hb.ready_in(h, clock()) == 0.0
    hb.acquire(h, clock())
    clock.advance(10)  # the probe never reported
    assert hb.ready_in(h, clock()) == 0.0


def test_breaker_off() -> None:
    hb, h, clock = book(breaker_failures=0)
    for _ in range(50):
        hb.failure(h, "unavailable", None, clock())
    assert h.closed and hb.ready_in(h, clock()) == 0.0


def test_retry_after_delays_the_deployment() -> None:
    hb, h, clock = book(breaker_failures=5)
    hb.failure(h, "rate_limit", 3.0, clock())
    assert hb.ready_in(h, clock()) == pytest.approx(3.0)
    clock.advance(2.0)
    assert hb.ready_in(h, clock()) == pytest.approx(1.0)
    clock.advance(1.0)
    assert hb.ready_in(h, clock()) == 0.0


def test_latency_ewma_per_call_kind() -> None:
    hb, h, _ = book(latency_alpha=0.5)
    hb.success(h, 100.0, stream=False)
    hb.success(h, 200.0, stream=False)
    assert h.latency_ms == pytest.approx(150.0)
    assert h.latency(stream=True) == pytest.approx(150.0)  # no stream measured yet: the other kind
    hb.success(h, 0.01, stream=True)
    assert h.ttft_ms == 1.0  # floored
    assert h.latency(stream=True) == 1.0 and h.latency(stream=False) == pytest.approx(150.0)
