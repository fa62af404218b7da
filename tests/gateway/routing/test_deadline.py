"""The call deadline (all attempts, backoffs and a stream to its end), cancellation of the call in flight,
`x-should-retry` on routing's errors, and `pilothouse.backoff_s` only on attempts that waited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pilothouse.config import ModelEntry
from pilothouse.errors import ApiError, InvalidRequest, RateLimited, UpstreamError, UpstreamTimeout
from pilothouse.gateway.providers.base import ChatRequest, ChatResult, Chunk, EmbeddingResult
from pilothouse.tracing.model import TraceRecord
from tests.gateway.routing.helpers import PRICE_IN, PRICE_OUT, Rig, Scripted, deployment, err


class Hanging(Scripted):
    """Answers nothing for `hang_s` (real time); a stream first sends `head` chunks, then hangs (an upstream
    sending only keep-alives looks the same from here: no chunk ever arrives)."""

    hang_s = 30.0
    head = 0
    cancelled = 0

    async def chat(self, request: ChatRequest) -> ChatResult:
        self._next(request)
        try:
            await asyncio.sleep(self.hang_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("the deadline should have cut this call")

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        await asyncio.sleep(self.hang_s)
        raise AssertionError("the deadline should have cut this call")

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self._next(request)
        for _ in range(self.head):
            yield {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": request.model,
                   "choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": None}]}  # fmt: skip
        try:
            await asyncio.sleep(self.hang_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("the deadline should have cut this stream")


def hanging_rig(models: list[ModelEntry], head: int = 0, **routing: Any) -> tuple[Rig, Hanging]:
    rig = Rig(models, {"h": []}, **routing)
    slow = Hanging("h", [], rig.clock)
    slow.head = head
    rig.providers["h"] = rig.pool.providers["h"] = slow
    return rig, slow


def llm_spans(trace: TraceRecord) -> list[Any]:
    return [s for s in trace.spans if s.kind == "llm"]


async def test_deadline_cuts_a_hanging_call_with_504_and_marks_its_usage_unknown() -> None:
    rig, slow = hanging_rig([ModelEntry(name="m", deployments=[deployment("h")])], call_deadline_s=0.3, retries=3)
    trace = TraceRecord(project_id="p", name="chat")
    prep = rig.prepare("m", trace)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await rig.gateway.chat(prep)
    assert 0.25 < time.monotonic() - started < 1.5
    error = caught.value
    assert error.status == 504 and error.code == "deadline_exceeded"
    assert error.headers["x-should-retry"] == "false"
    assert "0.3s" in error.message
    assert slow.cancelled == 1 and rig.calls("h") == 1  # cancelled, and no retry after the deadline
    span = llm_spans(trace)[0]
    assert span.attributes["pilothouse.upstream.cancelled"] == "deadline_exceeded"
    assert span.attributes["pilothouse.upstream.usage_unknown"] is True
    assert span.input_tokens is None and span.output_tokens is None and span.cost_usd is None
    assert rig.router.health_of(prep.deployment).failures == 1  # counts as a timeout of that deployment
    assert "pilothouse.usage.charged_at" not in span.attributes  # no output bound known: nothing to price


@pytest.mark.parametrize("why", ["deadline", "client left"])
async def test_a_cut_call_is_metered_at_its_worst_case(why: str) -> None:
    """The upstream may have billed a cut call up to its worst case: the trace (the spend ledger) and so the
    settled budget carry that, never zero."""
    rig, _ = hanging_rig([ModelEntry(name="m", deployments=[deployment("h")])], call_deadline_s=0.3)
    trace = TraceRecord(project_id="p", name="chat")
    prep = rig.prepare("m", trace, max_tokens=8)
    if why == "deadline":
        with pytest.raises(UpstreamTimeout):
            await rig.gateway.chat(prep)
    else:
        call = asyncio.create_task(rig.gateway.chat(prep))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    span = llm_spans(trace)[0]
    bound = prep.unreported_input_tokens()
    assert (span.input_tokens, span.output_tokens, span.usage_estimated) == (bound, 8, True)
    assert span.cost_usd == (PRICE_IN * bound + PRICE_OUT * 8) / 10**6
    assert span.attributes["pilothouse.usage.charged_at"] == "worst_case"
    assert span.attributes["pilothouse.upstream.usage_unknown"] is True


async def test_a_models_own_deadline_overrides_the_policy() -> None:
    model = ModelEntry(name="m", deployments=[deployment("h")], call_deadline_s=0.2)
    rig, _ = hanging_rig([model], call_deadline_s=300)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await rig.gateway.chat(rig.prepare("m"))
    assert time.monotonic() - started < 1.5


async def test_deadline_after_a_failover_ends_the_cut_attempt_and_the_route_carries_the_error() -> None:
    models = [ModelEntry(name="m", deployments=[deployment("a", weight=1e6), deployment("h")])]
    rig, _ = hanging_rig(models, call_deadline_s=0.3)
    rig.providers["a"] = rig.pool.providers["a"] = Scripted("a", [err("upstream", 503)], rig.clock)
    trace = TraceRecord(project_id="p", name="chat")
    with pytest.raises(UpstreamTimeout):
        await rig.gateway.chat(rig.prepare("m", trace))
    first, second = llm_spans(trace)
    assert first.status == "error" and first.input_tokens == 0  # failed with an answer: known to cost nothing
    assert second.status == "error" and second.attributes["error.type"] == "deadline_exceeded"
    assert second.attributes["pilothouse.upstream.usage_unknown"] is True
    route = next(s for s in trace.spans if s.name == "route")
    assert route.ended_at is None  # left for the server to record the caller's error on
    assert route.attributes["pilothouse.route.attempts"] == 2
    assert route.attributes["pilothouse.route.stopped_by"] == "deadline"


async def test_no_backoff_is_started_that_would_end_after_the_deadline() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("rate_limit", 429, retry_after=3.0)]},
        retries=2,
        max_retry_after_s=10,
        call_deadline_s=1.0,
    )
    with pytest.raises(RateLimited) as caught:
        await rig.gateway.chat(rig.prepare("m"))
    assert rig.calls("a") == 1 and rig.clock.sleeps == []  # the 3 s wait would pass the 1 s deadline
    assert "no time was left for another attempt within the call deadline of 1s" in caught.value.message


async def test_an_embedding_call_is_bounded_by_the_deadline_too() -> None:
    model = ModelEntry(name="e", kind="embedding", deployments=[deployment("h")], call_deadline_s=0.2)
    rig, _ = hanging_rig([model])
    trace = TraceRecord(project_id="p", name="embeddings")
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await rig.gateway.embeddings({"model": "e", "input": "hello"}, trace)
    assert time.monotonic() - started < 1.5 and caught.value.code == "deadline_exceeded"
    assert trace.spans[0].attributes["pilothouse.upstream.cancelled"] == "deadline_exceeded"


async def test_a_stream_that_never_sends_a_chunk_is_a_504_before_any_byte() -> None:
    rig, slow = hanging_rig([ModelEntry(name="m", deployments=[deployment("h")])], call_deadline_s=0.3)
    events = rig.gateway.chat_stream(rig.prepare("m", stream=True))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await anext(events)
    assert time.monotonic() - started < 1.5
    assert caught.value.code == "deadline_exceeded" and slow.cancelled == 1


async def test_a_stream_past_its_deadline_ends_with_an_error_event() -> None:
    rig, slow = hanging_rig([ModelEntry(name="m", deployments=[deployment("h")])], head=1, call_deadline_s=0.3)
    trace = TraceRecord(project_id="p", name="chat")
    prep = rig.prepare("m", trace, stream=True)
    started = time.monotonic()
    events = [e async for e in rig.gateway.chat_stream(prep)]
    assert time.monotonic() - started < 1.5
    assert len(events) == 2 and b"partial" in events[0]
    error = orjson.loads(events[1].removeprefix(b"data: "))["error"]
    assert error["code"] == "deadline_exceeded"
    assert slow.cancelled == 1
    span = llm_spans(trace)[0]
    assert span.status == "error" and span.attributes["pilothouse.upstream.cancelled"] == "deadline_exceeded"
    assert span.output_tokens  # what arrived before the cut is metered
    assert rig.router.health_of(prep.deployment).failures == 0  # outliving the deadline is not a failure


async def test_cancelling_the_request_cancels_the_call_and_marks_the_cut_attempt() -> None:
    rig, slow = hanging_rig([ModelEntry(name="m", deployments=[deployment("h")])], retries=3)
    trace = TraceRecord(project_id="p", name="chat")
    task = asyncio.ensure_future(rig.gateway.chat(rig.prepare("m", trace)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.cancelled == 1 and rig.calls("h") == 1
    span = llm_spans(trace)[0]
    assert span.attributes["pilothouse.upstream.cancelled"] == "cancelled"
    assert span.attributes["pilothouse.upstream.usage_unknown"] is True


async def test_cancelled_during_a_backoff_the_next_attempt_is_marked_not_sent() -> None:
    rig = Rig([ModelEntry(name="m", deployments=[deployment("a")])], {"a": [err("upstream", 503)]}, retries=2)
    rig.router.sleep = asyncio.sleep  # a real wait, so the cancellation lands in it
    rig.router.rng.random = lambda: 1.0  # type: ignore[method-assign]  # the full backoff: 0.25 s
    trace = TraceRecord(project_id="p", name="chat")
    task = asyncio.ensure_future(rig.gateway.chat(rig.prepare("m", trace)))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.calls("a") == 1
    first, waiting = llm_spans(trace)
    assert "pilothouse.upstream.usage_unknown" not in first.attributes
    assert waiting.attributes["pilothouse.attempt.not_sent"] is True and waiting.input_tokens == 0


async def test_should_retry_is_false_once_the_gateway_retried() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("upstream", 503), err("upstream", 503), err("upstream", 503)]},
        retries=2,
    )
    with pytest.raises(UpstreamError) as caught:
        await rig.gateway.chat(rig.prepare("m"))
    assert rig.calls("a") == 3 and caught.value.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("failure", "expected", "error_type"),
    [
        (err("upstream", 503), "true", UpstreamError),  # one call, not retried: another may work
        (err("timeout", 504), "true", UpstreamTimeout),
        (err("bad_request", 400), "false", InvalidRequest),  # another try cannot help
        (err("auth", 401), "false", UpstreamError),
    ],
)
async def test_should_retry_after_a_single_call(failure: Any, expected: str, error_type: type[ApiError]) -> None:
    rig = Rig([ModelEntry(name="m", deployments=[deployment("a")])], {"a": [failure]})
    with pytest.raises(error_type) as caught:
        await rig.gateway.chat(rig.prepare("m"))
    assert rig.calls("a") == 1 and caught.value.headers["x-should-retry"] == expected


async def test_backoff_is_recorded_only_on_attempts_that_waited() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a")], fallbacks=["f"]),
        ModelEntry(name="f", deployments=[deployment("fb")]),
    ]
    rig = Rig(models, {"a": [err("upstream", 503), err("upstream", 503)], "fb": []}, retries=1)
    rig.router.rng.random = lambda: 1.0  # type: ignore[method-assign]  # a backoff of exactly backoff_base_s
    _, _, trace = await rig.chat("m")
    first, retried, fallback = llm_spans(trace)
    assert "pilothouse.backoff_s" not in first.attributes
    assert retried.attributes["pilothouse.backoff_s"] == 0.25
    assert "pilothouse.backoff_s" not in fallback.attributes  # moved on at once: no wait
