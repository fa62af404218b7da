"""Routing end to end: `pilothouse up` in front of local upstreams made to fail (5xx, 429 with Retry-After,
a read timeout, a connection reset mid-response, a context-window overflow), called with the official
`openai` client with its own retries off, so any recovery is the gateway's.

Two instances of tests/support/flaky_upstream.py: `flaky` (faults queued by each test) and `healthy`.
Most models put a `flaky` deployment (weight 10^6, so requests start there) beside a `healthy` one; each
test uses its own model, so circuit-breaker state does not carry over between tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e import AdminApi, assert_clean_log
from tests.support.flaky_upstream import COMPLETION_TOKENS, PROMPT_TOKENS, FlakyUpstream
from tests.support.servers import RunningServer, start_server

pytestmark = pytest.mark.slow

TRACE_HEADER = "x-pilothouse-trace-id"
PRICE_IN = Decimal("1.5")
PRICE_OUT = Decimal("4")
SUCCESS_COST = (PROMPT_TOKENS * PRICE_IN + COMPLETION_TOKENS * PRICE_OUT) / Decimal(1_000_000)
COOLDOWN_S = 2.0
BREAKER_FAILURES = 3
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]
DUO_MODELS = ["duo-500", "duo-503", "duo-hang", "duo-reset", "duo-stream", "breaker"]


def _deployment(name: str, base_url: str, *, weight: float = 1.0, window: int | None = None) -> str:
    lines = [
        "[[models.deployments]]",
        f'name = "{name}"',
        'provider = "openai"',
        f'model = "{name}-model"',
        f'base_url = "{base_url}"',
        f"weight = {weight}",
        f"input_price_per_mtok = {PRICE_IN}",
        f"output_price_per_mtok = {PRICE_OUT}",
        "timeout_s = 1" if name == "flaky" else "timeout_s = 30",
    ]
    if window is not None:
        lines.append(f"context_window = {window}")
    return "\n".join(lines) + "\n"


def _model(name: str, deployments: str, **lists: list[str]) -> str:
    head = f'[[models]]\nname = "{name}"\n'
    for key, names in lists.items():
        head += f"{key} = {json.dumps(names)}\n"  # a JSON list of strings is a TOML array
    return head + deployments


def write_config(path: Path, flaky: str, healthy: str) -> None:
    parts = [
        "include_default_models = false\n",
        "[routing]\nretries = 1\nbackoff_base_s = 0.05\nbackoff_max_s = 0.2\nmax_retry_after_s = 3\n"
        f"breaker_failures = {BREAKER_FAILURES}\nbreaker_cooldown_s = {COOLDOWN_S}\n",
    ]
    for name in DUO_MODELS:
        parts.append(_model(name, _deployment("flaky", flaky, weight=1e6) + _deployment("healthy", healthy)))
    parts.append(_model("chain", _deployment("flaky", flaky), fallbacks=["backup"]))
    parts.append(_model("solo-429", _deployment("flaky", flaky), fallbacks=["backup"]))
    parts.append(_model("backup", _deployment("healthy", healthy)))
    parts.append(_model("short", _deployment("healthy", healthy, window=64), context_window_fallbacks=["long"]))
    parts.append(_model("short-upstream", _deployment("flaky", flaky), context_window_fallbacks=["long"]))
    parts.append(_model("long", _deployment("healthy", healthy, window=100_000)))
    path.write_text("\n".join(parts))


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FlakyUpstream, FlakyUpstream]]:
    flaky, healthy = FlakyUpstream("flaky", hang_s=3.0), FlakyUpstream("healthy")
    flaky.start()
    healthy.start()
    try:
        yield flaky, healthy
    finally:
        flaky.stop()
        healthy.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[FlakyUpstream, FlakyUpstream]
) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("gateway-routing")
    flaky, healthy = upstreams
    write_config(root / "pilothouse.toml", flaky.base_url, healthy.base_url)
    server = start_server(root / "data", config=root / "pilothouse.toml")
    try:
        yield server
    finally:
        server.stop()
    assert_clean_log(server)


@pytest.fixture
def flaky(upstreams: tuple[FlakyUpstream, FlakyUpstream]) -> Iterator[FlakyUpstream]:
    upstreams[0].reset()
    yield upstreams[0]
    upstreams[0].reset()


@pytest.fixture
def client(gateway: RunningServer, openai_for: Callable[..., OpenAI]) -> OpenAI:
    return openai_for(gateway)  # max_retries=0: the gateway does the retrying


@pytest.fixture
def admin(gateway: RunningServer, admin_for: Callable[[RunningServer], AdminApi]) -> AdminApi:
    return admin_for(gateway)


def ask(client: OpenAI, model: str, messages: list[ChatCompletionMessageParam] = MESSAGES) -> tuple[str, str, Any]:
    """(answer text, trace id, usage) of a successful non-streamed call."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, max_tokens=16)
    completion = raw.parse()
    return completion.choices[0].message.content or "", raw.headers[TRACE_HEADER], completion.usage


def attempts(trace: dict[str, Any]) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = [s for s in trace["spans"] if s["kind"] == "llm"]
    return sorted(spans, key=lambda s: s["attributes"]["pilothouse.attempt"])


def route_span(trace: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in trace["spans"] if s["kind"] == "step" and s["name"] == "route"]
    assert len(found) == 1, trace
    return found[0]


def assert_recovered(trace: dict[str, Any], path: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The trace shows one llm span per attempt under a route span, ending in success; the response's usage
    and cost come from the successful attempt, the trace total sums all attempts."""
    spans = attempts(trace)
    assert [(s["attributes"]["pilothouse.deployment"], s["status"]) for s in spans] == path, trace
    route = route_span(trace)
    assert route["status"] == "ok" and route["parent_id"] is None
    assert route["attributes"]["pilothouse.route.attempts"] == len(path)
    assert all(s["parent_id"] == route["id"] for s in spans)
    for span in spans[:-1]:
        assert span["error"] and span["latency_ms"] is not None
        assert Decimal(span["cost_usd"]) == 0 and span["input_tokens"] == 0
    last = spans[-1]
    assert last["error"] is None
    assert (last["input_tokens"], last["output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert Decimal(last["cost_usd"]) == SUCCESS_COST
    assert Decimal(trace["cost_usd"]) == sum(Decimal(s["cost_usd"]) for s in spans) == SUCCESS_COST
    assert trace["status"] == "ok"
    return spans


@pytest.mark.parametrize(
    ("fault", "model", "error_type", "upstream_status"),
    [
        ("500", "duo-500", "upstream_error", 500),
        ("503", "duo-503", "upstream_error", 503),
        ("hang", "duo-hang", "upstream_timeout", None),
        ("reset", "duo-reset", "upstream_unavailable", None),
    ],
)
def test_failing_deployment_fails_over_to_the_healthy_one(
    client: OpenAI,
    admin: AdminApi,
    flaky: FlakyUpstream,
    fault: str,
    model: str,
    error_type: str,
    upstream_status: int | None,
) -> None:
    flaky.fail_next(fault)
    text, trace_id, usage = ask(client, model)
    assert text == "Hello from healthy"
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    first, _ = assert_recovered(admin.trace(trace_id), [("flaky", "error"), ("healthy", "ok")])
    assert first["attributes"]["error.type"] == error_type
    assert first["attributes"].get("pilothouse.upstream.status") == upstream_status
    if fault == "hang":
        assert "timed out" in first["error"] and first["latency_ms"] >= 900
    if fault == "reset":
        assert "flaky" in first["attributes"]["pilothouse.deployment"]


def test_retry_after_is_waited_for_then_the_same_deployment_answers(
    client: OpenAI, admin: AdminApi, flaky: FlakyUpstream
) -> None:
    flaky.retry_after = 1.0
    flaky.fail_next("429")
    started = time.monotonic()
    text, trace_id, _ = ask(client, "solo-429")
    assert time.monotonic() - started >= 1.0
    assert text == "Hello from flaky"
    first, second = assert_recovered(admin.trace(trace_id), [("flaky", "error"), ("flaky", "ok")])
    assert first["attributes"]["pilothouse.upstream.status"] == 429
    assert first["attributes"]["pilothouse.upstream.retry_after_s"] == 1.0
    assert second["attributes"]["pilothouse.backoff_s"] >= 1.0


def test_retry_after_beyond_the_cap_moves_to_the_fallback_at_once(
    client: OpenAI, admin: AdminApi, flaky: FlakyUpstream
) -> None:
    flaky.retry_after = 30.0
    flaky.fail_next("429")
    started = time.monotonic()
    text, trace_id, _ = ask(client, "solo-429")
    assert time.monotonic() - started < 2.0
    assert text == "Hello from healthy"
    _, fallback = assert_recovered(admin.trace(trace_id), [("flaky", "error"), ("healthy", "ok")])
    assert fallback["model"] == "backup" and fallback["attributes"]["pilothouse.fallback_from"] == "solo-429"


def test_fallback_chain_when_the_only_deployment_keeps_failing(
    client: OpenAI, admin: AdminApi, flaky: FlakyUpstream
) -> None:
    flaky.fail_next("503", "503")  # the first call and its one retry
    text, trace_id, _ = ask(client, "chain")
    assert text == "Hello from healthy"
    spans = assert_recovered(admin.trace(trace_id), [("flaky", "error"), ("flaky", "error"), ("healthy", "ok")])
    assert [s["model"] for s in spans] == ["chain", "chain", "backup"]


def test_circuit_breaker_opens_skips_the_deployment_and_half_opens(
    client: OpenAI, admin: AdminApi, flaky: FlakyUpstream
) -> None:
    flaky.always = "500"
    before = flaky.calls
    for _ in range(BREAKER_FAILURES):
        text, trace_id, _ = ask(client, "breaker")
        assert text == "Hello from healthy"
        assert_recovered(admin.trace(trace_id), [("flaky", "error"), ("healthy", "ok")])
    assert flaky.calls == before + BREAKER_FAILURES
    # open: the bad deployment is skipped, no call and no span for it
    for _ in range(3):
        text, trace_id, _ = ask(client, "breaker")
        assert text == "Hello from healthy"
        trace = admin.trace(trace_id)
        assert [(s["kind"], s["attributes"].get("pilothouse.deployment")) for s in trace["spans"]] == [
            ("llm", "healthy")
        ]
    assert flaky.calls == before + BREAKER_FAILURES
    # after the cooldown one request probes it; the upstream has recovered, so the circuit closes
    flaky.always = None
    time.sleep(COOLDOWN_S + 0.2)
    text, trace_id, _ = ask(client, "breaker")
    assert text == "Hello from flaky"
    spans = attempts(admin.trace(trace_id))
    assert [(s["attributes"]["pilothouse.deployment"], s["status"]) for s in spans] == [("flaky", "ok")]
    assert flaky.calls == before + BREAKER_FAILURES + 1
    text, _, _ = ask(client, "breaker")
    assert text == "Hello from flaky"


def test_context_window_overflow_falls_back_to_the_larger_model(client: OpenAI, admin: AdminApi) -> None:
    long_prompt: list[ChatCompletionMessageParam] = [{"role": "user", "content": "word " * 400}]
    text, trace_id, _ = ask(client, "short", long_prompt)
    assert text == "Hello from healthy"
    trace = admin.trace(trace_id)
    (span,) = attempts(trace)
    assert span["model"] == "long" and span["attributes"]["pilothouse.fallback_from"] == "short"
    assert trace["model"] == "short"


def test_overflow_reported_by_the_upstream_falls_back_too(
    client: OpenAI, admin: AdminApi, flaky: FlakyUpstream
) -> None:
    flaky.fail_next("context")
    text, trace_id, _ = ask(client, "short-upstream")
    assert text == "Hello from healthy"
    first, second = assert_recovered(admin.trace(trace_id), [("flaky", "error"), ("healthy", "ok")])
    assert first["attributes"]["error.type"] == "context_length_exceeded"
    assert second["model"] == "long"


@pytest.mark.parametrize("fault", ["503", "reset"])
def test_stream_failing_before_its_first_chunk_is_retried_transparently(
    client: OpenAI, admin: AdminApi, flaky: FlakyUpstream, fault: str
) -> None:
    flaky.fail_next(fault)
    with client.chat.completions.with_streaming_response.create(
        model="duo-stream", messages=MESSAGES, max_tokens=16, stream=True, stream_options={"include_usage": True}
    ) as response:
        trace_id = response.headers[TRACE_HEADER]
        chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from healthy"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == COMPLETION_TOKENS
    trace = admin.trace(trace_id)
    spans = assert_recovered(trace, [("flaky", "error"), ("healthy", "ok")])
    assert spans[1]["ttft_ms"] is not None
    assert route_span(trace)["ended_at"] >= spans[1]["ended_at"]
