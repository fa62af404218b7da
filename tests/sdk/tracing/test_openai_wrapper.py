"""The official `openai` client, wrapped: its chat completions become `llm` spans, and a call through the
gateway joins the caller's trace (W3C traceparent), the gateway's spans nested under the caller's span."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
from starlette.testclient import TestClient

import pilothouse
from pilothouse.sdk.tracing import current_span, exporter
from tests.sdk.tracing.conftest import CHAT
from tests.support.asgi_app import ADMIN_KEY


def _trace(server: TestClient, trace_id: str) -> dict[str, Any]:
    response = server.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    trace: dict[str, Any] = response.json()
    return trace


def _check_joined(server: TestClient, trace_id: str, *, stream: bool) -> None:
    trace = _trace(server, trace_id)
    spans = trace["spans"]
    [root] = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "answer" and trace["name"] == "answer"
    [ours] = [s for s in spans if s["parent_id"] == root["id"]]
    assert ours["kind"] == "llm" and ours["name"] == f"chat {CHAT}"
    assert ours["attributes"]["pilothouse.via_gateway"] is True
    assert ours["attributes"]["pilothouse.gateway.trace_id"] == trace_id  # the gateway joined our trace
    if stream:
        assert ours["ttft_ms"] is not None and ours["output"]
    gateway = [s for s in spans if s["parent_id"] == ours["id"]]
    assert gateway, f"no gateway span under the SDK's llm span: {[(s['name'], s['parent_id']) for s in spans]}"
    metered = [s for s in spans if s["kind"] == "llm" and s["input_tokens"]]
    assert [s["id"] for s in metered] != [ours["id"]] and ours["input_tokens"] is None  # the gateway's counts
    assert trace["input_tokens"] == sum(s["input_tokens"] for s in metered) > 0  # counted once, not twice
    assert {s["trace_id"] for s in spans} == {trace_id}


def test_a_call_through_the_gateway_nests_under_the_callers_span(
    server: TestClient, sent_to: exporter.BatchExporter
) -> None:
    client = pilothouse.wrap_openai(
        openai.OpenAI(base_url="http://testserver/v1", api_key=ADMIN_KEY, http_client=server)
    )

    @pilothouse.observe(name="answer")
    def answer(stream: bool) -> str:
        span = current_span()
        assert span is not None
        if stream:
            chunks = client.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text
        else:
            reply = client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
        return span.trace.id

    for stream in (False, True):
        trace_id = answer(stream)
        assert pilothouse.flush(timeout=10)
        _check_joined(server, trace_id, stream=stream)


def test_the_async_client_is_traced_too(server: TestClient, sent_to: exporter.BatchExporter) -> None:
    """AsyncOpenAI against the same app (its ASGI transport), whole and streamed answers."""
    app = server.app

    async def main() -> list[str]:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        client = pilothouse.wrap_openai(
            openai.AsyncOpenAI(base_url="http://testserver/v1", api_key=ADMIN_KEY, http_client=http)  # type: ignore[arg-type]
        )

        @pilothouse.observe(name="answer")
        async def answer(stream: bool) -> str:
            span = current_span()
            assert span is not None
            messages: Any = [{"role": "user", "content": "hi"}]
            if stream:
                chunks = await client.chat.completions.create(model=CHAT, messages=messages, stream=True)
                parts = [c.choices[0].delta.content or "" async for c in chunks if c.choices]
                assert "".join(parts)
            else:
                reply = await client.chat.completions.create(model=CHAT, messages=messages)
                assert reply.choices[0].message.content
            return span.trace.id

        ids = [await answer(False), await answer(True)]
        await http.aclose()
        return ids

    plain, streamed = asyncio.run(main())
    assert pilothouse.flush(timeout=10)
    _check_joined(server, plain, stream=False)
    _check_joined(server, streamed, stream=True)


def test_a_direct_call_is_priced_at_ingest(server: TestClient, sent_to: exporter.BatchExporter) -> None:
    """An llm span with usage but no cost (a direct call to OpenAI) gets the price book's cost on ingest."""
    with pilothouse.span("direct", kind="llm") as s:
        s.update(model="gpt-4o-mini", provider="openai", input_tokens=1_000_000, output_tokens=0)
        trace_id = s.trace.id
    assert pilothouse.flush(timeout=10)
    [span] = _trace(server, trace_id)["spans"]
    assert span["cost_usd"] is not None and float(span["cost_usd"]) > 0
