"""The route stage for whole (non-streamed) calls: failover, retries, Retry-After, fallbacks, the circuit
breaker, and how every attempt shows on the trace."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pilothouse.config import ModelEntry
from pilothouse.errors import ApiError, InvalidRequest, RateLimited, UpstreamError
from pilothouse.tracing.model import SpanRecord, TraceRecord

from .helpers import PRICE_IN, PRICE_OUT, Rig, deployment, err

SUCCESS_COST = (Decimal(10) * PRICE_IN + Decimal(2) * PRICE_OUT) / 10**6


def two_deployments(**kw: object) -> list[ModelEntry]:
    return [ModelEntry(name="m", deployments=[deployment("a"), deployment("b")], **kw)]  # type: ignore[arg-type]


def llm_spans(trace: TraceRecord) -> list[SpanRecord]:
    return [s for s in trace.spans if s.kind == "llm"]


def first_pick(rig: Rig, name: str) -> None:
    """Make `name` the deployment the request starts on, whatever the random pick."""
    other = next(d for d in rig.settings.models[0].deployments if d.name != name)
    rig.router.health.failure(rig.router.health_of(other), "rate_limit", 0.001, rig.clock())


async def test_single_deployment_success_is_one_span_without_route() -> None:
    rig = Rig([ModelEntry(name="m", deployments=[deployment("a")])], {"a": []})
    answer, prep, trace = await rig.chat("m")
    assert answer["choices"][0]["message"]["content"] == "from a"
    assert [s.kind for s in trace.spans] == ["llm"]
    span = trace.spans[0]
    assert span.attributes["pilothouse.attempt"] == 1
    assert span.attributes["pilothouse.deployment"] == "a"
    assert span.cost_usd == SUCCESS_COST and prep.route is None
    assert rig.router.health_of(prep.deployment).latency_ms is not None


async def test_failover_to_the_other_deployment_shows_both_attempts() -> None:
    rig = Rig(two_deployments(), {"a": [err("unavailable", 503)], "b": []})
    rig.clock.advance(0.0)
    first_pick(rig, "a")
    rig.clock.advance(0.01)  # b's Retry-After is over: b is ready, but the request already started on a
    answer, prep, trace = await rig.chat("m")
    assert answer["choices"][0]["message"]["content"] == "from b"
    assert rig.calls("a") == 1 and rig.calls("b") == 1
    assert rig.clock.sleeps == []  # another deployment: no backoff
    route = next(s for s in trace.spans if s.kind == "step")
    assert route.name == "route" and route.parent_id is None and route.status == "ok"
    assert route.attributes["pilothouse.route.attempts"] == 2
    first, second = llm_spans(trace)
    assert first.parent_id == second.parent_id == route.id
    assert (first.status, second.status) == ("error", "ok")
    assert first.attributes["pilothouse.deployment"] == "a" and second.attributes["pilothouse.deployment"] == "b"
    assert [first.attributes["pilothouse.attempt"], second.attributes["pilothouse.attempt"]] == [1, 2]
    assert first.error is not None and "upstream said unavailable" in first.error
    assert first.attributes["error.type"] == "upstream_unavailable"
    assert first.attributes["pilothouse.upstream.status"] == 503
    assert first.cost_usd == 0 and first.input_tokens == 0
    assert second.cost_usd == SUCCESS_COST and second.input_tokens == 10
    assert second.attributes["pilothouse.deployment.model"] == "up-b"
    assert "gen_ai.request.temperature" not in second.attributes
    assert second.input == first.input  # the request is recorded on every attempt
    assert prep.span is second and prep.request.model == "up-b"
    assert trace.status == "ok"  # recovered: the failed attempt sits below the route span
    assert trace.totals()[2] == SUCCESS_COST
    assert first.ended_at is not None and first.ended_at <= second.started_at


async def test_retries_with_backoff_on_one_deployment() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("upstream", 500), err("timeout", 0)]},
        retries=2,
        backoff_base_s=1.0,
        backoff_max_s=1.5,
    )
    answer, _, trace = await rig.chat("m", temperature=0.3)
    assert answer["choices"][0]["message"]["content"] == "from a"
    assert rig.calls("a") == 3
    assert len(rig.clock.sleeps) == 2
    assert 0 <= rig.clock.sleeps[0] <= 1.0 and 0 <= rig.clock.sleeps[1] <= 1.5  # full jitter under the ceiling
    spans = llm_spans(trace)
    assert [s.status for s in spans] == ["error", "error", "ok"]
    assert [s.attributes["pilothouse.attempt"] for s in spans] == [1, 2, 3]
    assert spans[2].attributes["gen_ai.request.temperature"] == 0.3
    assert spans[1].attributes["pilothouse.backoff_s"] == round(rig.clock.sleeps[0], 3)


async def test_no_retries_by_default_on_a_single_deployment() -> None:
    rig = Rig([ModelEntry(name="m", deployments=[deployment("a")])], {"a": [err("unavailable", 503)]})
    trace = TraceRecord(project_id="p", name="chat")
    prep = rig.prepare("m", trace)
    with pytest.raises(UpstreamError) as caught:
        await rig.gateway.chat(prep)
    assert caught.value.code == "upstream_unavailable"
    assert rig.calls("a") == 1
    assert [s.kind for s in trace.spans] == ["llm"]
    assert trace.spans[0].ended_at is None  # left for the server to record the error on, as before routing


async def test_retry_after_is_honoured_when_short() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("rate_limit", 429, retry_after=3.0)]},
        retries=1,
        backoff_base_s=0.1,
        max_retry_after_s=5,
    )
    await rig.chat("m")
    assert rig.calls("a") == 2
    assert rig.clock.sleeps and rig.clock.sleeps[0] >= 3.0


async def test_long_retry_after_moves_on_to_the_fallback_without_waiting() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a")], fallbacks=["f"]),
        ModelEntry(name="f", deployments=[deployment("fb")]),
    ]
    rig = Rig(models, {"a": [err("rate_limit", 429, retry_after=60.0)], "fb": []}, retries=3, max_retry_after_s=5)
    answer, _, trace = await rig.chat("m")
    assert answer["choices"][0]["message"]["content"] == "from fb"
    assert rig.calls("a") == 1 and rig.clock.sleeps == []
    fallback = llm_spans(trace)[1]
    assert fallback.model == "f" and fallback.attributes["pilothouse.fallback_from"] == "m"
    assert llm_spans(trace)[0].attributes["pilothouse.upstream.retry_after_s"] == 60.0
    # other requests also keep away from the rate-limited deployment until its Retry-After passed
    await rig.chat("m")
    assert rig.calls("a") == 1 and rig.calls("fb") == 2


async def test_rate_limit_that_exhausts_everything_is_a_429_with_retry_after() -> None:
    rig = Rig([ModelEntry(name="m", deployments=[deployment("a")])], {"a": [err("rate_limit", 429, retry_after=7)]})
    with pytest.raises(RateLimited) as caught:
        await rig.gateway.chat(rig.prepare("m"))
    # one call, not retried by the gateway (retries = 0): the client may try again after the wait
    assert caught.value.headers == {"retry-after": "7", "x-should-retry": "true"}


async def test_bad_request_is_not_retried() -> None:
    rig = Rig(two_deployments(), {"a": [err("bad_request", 400)], "b": [err("bad_request", 400)]}, retries=3)
    with pytest.raises(InvalidRequest):
        await rig.gateway.chat(rig.prepare("m"))
    assert rig.calls("a") + rig.calls("b") == 1
    assert rig.router.health_of(rig.settings.models[0].deployments[0]).failures == 0


async def test_auth_failure_moves_on_but_never_retries_that_deployment() -> None:
    rig = Rig(two_deployments(), {"a": [err("auth", 401)] * 5, "b": [err("unavailable", 503)]}, retries=2)
    first_pick(rig, "a")
    rig.clock.advance(0.01)
    answer, _, trace = await rig.chat("m")
    assert answer["choices"][0]["message"]["content"] == "from b"
    assert rig.calls("a") == 1 and rig.calls("b") == 2
    assert [s.attributes["pilothouse.deployment"] for s in llm_spans(trace)] == ["a", "b", "b"]


async def test_every_attempt_failing_reports_the_last_error_and_the_path() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a"), deployment("b")], fallbacks=["f"]),
        ModelEntry(name="f", deployments=[deployment("fb")]),
    ]
    rig = Rig(models, {"a": [err("unavailable", 503)], "b": [err("unavailable", 503)], "fb": [err("timeout", 504)]})
    trace = TraceRecord(project_id="p", name="chat")
    prep = rig.prepare("m", trace)
    with pytest.raises(ApiError) as caught:
        await rig.gateway.chat(prep)
    message = caught.value.message
    assert "attempt 3; earlier attempts:" in message and "a: unavailable" in message and "b: unavailable" in message
    route = prep.route
    assert route is not None and route.ended_at is None  # the server records the final error on it
    assert all(s.ended_at is not None and s.status == "error" for s in llm_spans(trace))
    assert route.attributes["pilothouse.route.attempts"] == 3


async def test_max_attempts_caps_calls_over_the_chain() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a")], fallbacks=["f"]),
        ModelEntry(name="f", deployments=[deployment("fb")]),
    ]
    rig = Rig(models, {"a": [err("upstream")] * 10, "fb": []}, retries=5, max_attempts=3, backoff_base_s=0)
    with pytest.raises(UpstreamError):
        await rig.gateway.chat(rig.prepare("m"))
    assert rig.calls("a") == 3 and rig.calls("fb") == 0


async def test_circuit_opens_skips_the_deployment_and_half_opens_after_cooldown() -> None:
    rig = Rig(
        two_deployments(),
        {"a": [err("unavailable", 503)] * 3, "b": []},
        breaker_failures=2,
        breaker_cooldown_s=30,
    )
    a = rig.settings.models[0].deployments[0]
    for _ in range(2):
        first_pick(rig, "a")
        rig.clock.advance(0.01)
        await rig.chat("m")
    assert rig.calls("a") == 2 and rig.router.health.ready_in(rig.router.health_of(a), rig.clock()) == float("inf")
    for _ in range(10):  # open: every request goes to b, with no span for a
        _, _, trace = await rig.chat("m")
        assert [s.attributes["pilothouse.deployment"] for s in trace.spans] == ["b"]
    assert rig.calls("a") == 2
    rig.clock.advance(30)  # half-open: one probe; it fails (a's third scripted error) and the circuit reopens
    for _ in range(10):
        await rig.chat("m")
    assert rig.calls("a") == 3
    rig.clock.advance(30)  # the next probe succeeds: closed again, a gets traffic
    for _ in range(20):
        await rig.chat("m")
    assert rig.calls("a") > 4 and rig.router.health_of(a).closed


async def test_all_circuits_open_fails_fast_with_503() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("unavailable", 503)] * 2},
        breaker_failures=2,
        breaker_cooldown_s=20,
    )
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await rig.gateway.chat(rig.prepare("m"))
    rig.clock.advance(5)
    trace = TraceRecord(project_id="p", name="chat")
    with pytest.raises(UpstreamError) as caught:
        await rig.gateway.chat(rig.prepare("m", trace))
    assert caught.value.status == 503 and caught.value.headers == {"retry-after": "15", "x-should-retry": "true"}
    assert "circuits are open" in caught.value.message
    assert rig.calls("a") == 2 and len(trace.spans) == 1


async def test_cancelled_probe_lets_the_next_request_probe() -> None:
    import asyncio

    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("unavailable", 503)]},
        breaker_failures=1,
        breaker_cooldown_s=10,
    )
    with pytest.raises(UpstreamError):
        await rig.gateway.chat(rig.prepare("m"))
    rig.clock.advance(10)
    provider = rig.providers["a"]

    async def hang(request: object) -> object:
        await asyncio.sleep(3600)
        raise AssertionError

    provider.chat = hang  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(rig.gateway.chat(rig.prepare("m")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    del provider.chat
    await rig.chat("m")  # not refused as "a probe is in flight"
    assert rig.router.health_of(rig.settings.models[0].deployments[0]).closed


async def test_latency_aware_selection_prefers_the_faster_deployment() -> None:
    rig = Rig(two_deployments(), {"a": [], "b": []}, latency_s={"a": 0.05, "b": 0.5})
    for _ in range(200):
        await rig.chat("m")
    assert rig.calls("a") > 3 * rig.calls("b") > 0  # b still gets some traffic (not starved)
