"""Streams (retried only before their first chunk) and context-window fallbacks."""

from __future__ import annotations

import orjson
import pytest

from pilothouse.config import ModelEntry
from pilothouse.errors import InvalidRequest, UpstreamTimeout
from pilothouse.gateway.prepared import Prepared
from pilothouse.tracing.model import TraceRecord

from .helpers import Rig, deployment, err


async def stream(rig: Rig, model: str, **extra: object) -> tuple[list[dict[str, object]], Prepared, TraceRecord]:
    trace = TraceRecord(project_id="p", name="chat")
    prep = rig.prepare(model, trace, stream=True, **extra)
    events = [orjson.loads(e[len(b"data: ") :]) async for e in rig.gateway.chat_stream(prep)]
    trace.finish()
    return events, prep, trace


def text(events: list[dict[str, object]]) -> str:
    out = ""
    for event in events:
        for choice in event.get("choices") or []:  # type: ignore[attr-defined]
            out += choice["delta"].get("content") or ""
    return out


async def test_stream_failing_before_its_first_chunk_is_retried_transparently() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a")], fallbacks=["f"]),
        ModelEntry(name="f", deployments=[deployment("fb")]),
    ]
    rig = Rig(models, {"a": [err("unavailable", 503)], "fb": []})
    events, prep, trace = await stream(rig, "m")
    assert text(events) == "from fb"
    assert all("error" not in e for e in events)
    route = prep.route
    assert route is not None and route.status == "ok" and route.ended_at is not None
    llm = [s for s in trace.spans if s.kind == "llm"]
    assert [(s.attributes["pilothouse.deployment"], s.status) for s in llm] == [("a", "error"), ("fb", "ok")]
    assert llm[1].output_tokens == 2 and llm[1].ttft_ms is not None and llm[1].ended_at is not None
    assert route.ended_at >= llm[1].ended_at
    assert trace.status == "ok"
    assert rig.router.health_of(prep.deployment).ttft_ms is not None


async def test_stream_failing_after_its_first_chunk_ends_with_an_error_event() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a")], fallbacks=["f"]),
        ModelEntry(name="f", deployments=[deployment("fb")]),
    ]
    rig = Rig(models, {"a": ["break"], "fb": []}, retries=3)
    events, prep, trace = await stream(rig, "m")
    assert text(events) == "from"
    assert "error" in events[-1]
    assert rig.calls("a") == 1 and rig.calls("fb") == 0  # no retry once the caller has a chunk
    assert trace.spans[0].status == "error" and prep.route is None
    assert rig.router.health_of(prep.deployment).failures == 1


async def test_stream_whose_every_attempt_fails_raises_before_any_byte() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a"), deployment("b")])],
        {"a": [err("timeout", 0)], "b": [err("timeout", 0)]},
    )
    trace = TraceRecord(project_id="p", name="chat")
    events = rig.gateway.chat_stream(rig.prepare("m", trace, stream=True))
    with pytest.raises(UpstreamTimeout) as caught:
        await anext(events)
    assert caught.value.status == 504
    assert rig.calls("a") == rig.calls("b") == 1


async def test_stream_with_failover_and_retry_span_end_with_error_mid_way() -> None:
    rig = Rig(
        [ModelEntry(name="m", deployments=[deployment("a")])],
        {"a": [err("upstream"), "break"]},
        retries=1,
        backoff_base_s=0.5,
    )
    events, prep, trace = await stream(rig, "m")
    assert "error" in events[-1]
    assert prep.route is not None and prep.route.status == "error"
    assert trace.status == "error"


def windows() -> list[ModelEntry]:
    return [
        ModelEntry(
            name="small",
            deployments=[deployment("s", window=64)],
            fallbacks=["other"],
            context_window_fallbacks=["tiny", "big"],
        ),
        ModelEntry(name="tiny", deployments=[deployment("t", window=32)]),
        ModelEntry(name="big", deployments=[deployment("b", window=10_000)]),
        ModelEntry(name="other", deployments=[deployment("o", window=64)]),
    ]


async def test_precheck_overflow_goes_to_the_first_fallback_that_fits() -> None:
    rig = Rig(windows(), {"s": [], "t": [], "b": [], "o": []})
    answer, prep, trace = await rig.chat("small", max_tokens=200)
    assert answer["choices"][0]["message"]["content"] == "from b"
    assert rig.calls("s") == rig.calls("t") == 0
    assert prep.entry.name == "big" and trace.model == "small"
    span = trace.spans[0]
    assert span.model == "big" and span.attributes["pilothouse.fallback_from"] == "small"
    assert span.attributes["pilothouse.deployment"] == "b"


async def test_precheck_overflow_without_a_fitting_fallback_is_refused_as_before() -> None:
    rig = Rig(windows(), {"s": [], "t": [], "b": [], "o": []})
    with pytest.raises(InvalidRequest) as caught:
        rig.prepare("small", max_tokens=20_000)
    assert caught.value.code == "context_length_exceeded" and "context window of 64" in caught.value.message


async def test_upstream_overflow_goes_to_a_larger_context_model() -> None:
    rig = Rig(windows(), {"s": [err("context_window", 400)], "t": [], "b": [], "o": []}, retries=2)
    answer, _, trace = await rig.chat("small", max_tokens=5)
    assert answer["choices"][0]["message"]["content"] == "from b"
    assert rig.calls("s") == 1 and rig.calls("t") == 0 and rig.calls("o") == 0  # tiny is smaller: skipped
    assert [s.model for s in trace.spans if s.kind == "llm"] == ["small", "big"]


async def test_other_failures_use_the_ordinary_fallbacks() -> None:
    rig = Rig(windows(), {"s": [err("unavailable", 503)], "t": [], "b": [], "o": []})
    answer, _, _ = await rig.chat("small", max_tokens=5)
    assert answer["choices"][0]["message"]["content"] == "from o"


async def test_upstream_overflow_without_larger_model_is_a_400() -> None:
    models = [
        ModelEntry(name="m", deployments=[deployment("a", window=64)], fallbacks=["same"]),
        ModelEntry(name="same", deployments=[deployment("x", window=64)]),
    ]
    rig = Rig(models, {"a": [err("context_window", 400)], "x": []})
    with pytest.raises(InvalidRequest) as caught:
        await rig.gateway.chat(rig.prepare("m"))
    assert caught.value.code == "context_length_exceeded"
    assert rig.calls("x") == 0
