"""A small application instrumented with the SDK (nested async functions, a thread pool, an exception, a
generator) produces the right tree, with timings and error status, in a real (in-process) server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

import pilothouse
from pilothouse.sdk.tracing import ContextExecutor, current_span, exporter


@pilothouse.observe
def tokenize(text: str) -> list[str]:
    time.sleep(0.005)
    return text.split()


@pilothouse.observe(kind="retrieval", name="search")
def search(query: str) -> Iterator[str]:
    for doc in ("doc-a", "doc-b", "doc-c"):
        with pilothouse.span("score", kind="step") as s:
            s.update(output=len(doc))
        yield f"{query}:{doc}"


@pilothouse.observe
async def fetch(i: int) -> int:
    await asyncio.sleep(0.02)
    with ContextExecutor(max_workers=2) as pool:
        words = list(pool.map(tokenize, [f"a b {i}", "c d"]))
    return sum(len(w) for w in words)


@pilothouse.observe(kind="tool")
async def flaky() -> None:
    await asyncio.sleep(0.001)
    raise ValueError("the weather service is down")


@pilothouse.observe(name="handle")
async def handle(question: str) -> str:
    pilothouse.update_trace(session_id="sess-1", user_id="user-9", tags=["beta"], metadata={"plan": "pro"})
    counts = await asyncio.gather(fetch(1), fetch(2))
    docs = list(search(question))
    with contextlib.suppress(ValueError):
        await flaky()
    span = current_span()
    assert span is not None
    return f"{span.trace.id} {sum(counts)} {len(docs)}"


def _trace(server: TestClient, trace_id: str) -> dict[str, Any]:
    response = server.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    trace: dict[str, Any] = response.json()
    return trace


def test_the_app_produces_the_right_tree(server: TestClient, sent_to: exporter.BatchExporter) -> None:
    trace_id, total, docs = asyncio.run(handle("q")).split()
    assert (total, docs) == ("10", "3")
    assert pilothouse.flush(timeout=10)
    assert sent_to.dropped == 0 and sent_to.sent == 12
    trace = _trace(server, trace_id)
    assert (trace["name"], trace["source"], trace["session_id"], trace["user_id"], trace["tags"]) == (
        "handle",
        "sdk",
        "sess-1",
        "user-9",
        ["beta"],
    )
    spans = trace["spans"]
    by_id = {s["id"]: s for s in spans}
    names = {s["id"]: s["name"] for s in spans}

    def children(parent: str | None) -> list[str]:
        return sorted(names[s["id"]] for s in spans if s["parent_id"] == parent)

    [root] = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "handle" and root["input"] == ["q"]
    assert root["attributes"]["pilothouse.trace.metadata"] == {"plan": "pro"}
    assert children(root["id"]) == ["fetch", "fetch", "flaky", "search"]
    for fetch_span in (s for s in spans if s["name"] == "fetch"):
        assert children(fetch_span["id"]) == ["tokenize", "tokenize"]  # from the pool's threads
        assert fetch_span["latency_ms"] >= 20
    [gen] = [s for s in spans if s["name"] == "search"]
    assert gen["kind"] == "retrieval" and children(gen["id"]) == ["score", "score", "score"]
    assert gen["output"] == ["q:doc-a", "q:doc-b", "q:doc-c"]
    [failed] = [s for s in spans if s["name"] == "flaky"]
    assert failed["status"] == "error" and "the weather service is down" in failed["error"]
    assert failed["kind"] == "tool"
    assert trace["status"] == "ok"  # the root caught the error
    for s in spans:  # every child lies within its parent's time
        parent = by_id.get(s["parent_id"]) if s["parent_id"] else None
        assert s["ended_at"] >= s["started_at"]
        if parent is not None:
            assert parent["started_at"] <= s["started_at"] and s["ended_at"] <= parent["ended_at"] + 1e-6


def test_an_unhandled_exception_fails_the_trace(server: TestClient, sent_to: exporter.BatchExporter) -> None:
    @pilothouse.observe
    def broken() -> None:
        with pilothouse.span("inner", kind="step"):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        broken()
    assert pilothouse.flush(timeout=10)
    listed = server.get("/api/traces", params={"limit": 5}).json()["data"]
    [trace] = [t for t in listed if t["name"].endswith("broken")]
    assert trace["status"] == "error"
    spans = _trace(server, trace["id"])["spans"]
    assert {s["name"]: s["status"] for s in spans} == {trace["name"]: "error", "inner": "error"}


def test_with_the_server_down_the_app_runs_on_and_drops_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on the port: every call returns at once, the spans are dropped, counted and reported."""
    previous = exporter.ACTIVE
    down = exporter.configure(
        url="http://127.0.0.1:9", api_key="ph-x", flush_interval_s=0.01, retries=2, backoff_s=0.01, max_queue=50
    )
    assert isinstance(down, exporter.BatchExporter)
    try:

        @pilothouse.observe
        def step(i: int) -> int:
            return i * 2

        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="pilothouse.sdk"):
            assert [step(i) for i in range(200)] == [i * 2 for i in range(200)]
            elapsed = time.perf_counter() - started
            assert pilothouse.flush(timeout=10)
        assert elapsed < 0.5, f"200 traced calls took {elapsed:.3f}s with the server down"
        assert down.sent == 0 and down.dropped == 200  # queue overflow and failed batches alike
        assert any("dropped" in r.getMessage() and "spans" in r.getMessage() for r in caplog.records)
    finally:
        down.shutdown(timeout=1)
        exporter.ACTIVE = previous
