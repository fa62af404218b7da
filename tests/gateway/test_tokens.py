"""The reservation bound on input tokens (a true upper bound), the display estimate, and the metered output
of calls whose upstream reports no usage (capped by max_tokens)."""

# ruff: noqa: RUF001  (Chinese samples use full-width punctuation on purpose)
from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from pilothouse.config import Deployment, LocalModelSettings, ModelEntry, Settings
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.local import LocalProvider
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.streaming import StreamAccumulator
from pilothouse.gateway.tokens import (
    IMAGE_PART_BOUND,
    PER_MESSAGE_BOUND,
    PER_REQUEST_BOUND,
    TOOLS_BOUND,
    estimate_messages_tokens,
    input_token_bound,
    output_token_estimate,
)
from pilothouse.tracing.model import TraceRecord

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "東京"}'}}

# Varied text: prose, CJK, JSON, code, digits, emoji, and the very short messages the estimate got most wrong.
TEXTS = [
    "hi",
    "",
    "?",
    "Write a short poem about the sea, in the style of a ship's log.",
    "你好，世界！今天天气很好，我们去公园散步吧。预算也是如此：平时没人注意。",
    "水先案内人は夜明け前に貨物船に乗り込み、狭い水路の浅瀬をすべて知っている。",
    json.dumps({"id": 123456789, "items": [{"sku": "A-1", "qty": 3, "price": 19.99}] * 5, "ok": True}),
    "def f(x: int) -> int:\n    return {k: v for k, v in zip(range(x), range(x, 2 * x))}[0]\n" * 3,
    "3.14159265358979 2718281828 +1 (555) 010-9999 2025-06-01 1,234,567.89 " * 4,
    "😀👍🏽👨‍👩‍👧‍👦🏳️‍🌈🇯🇵 🔥✨🎉" * 5,
]


def conversations() -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[{"role": "user", "content": text}] for text in TEXTS]
    out += [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}] for text in TEXTS]
    out.append(
        [
            {"role": "system", "content": TEXTS[4]},
            *({"role": role, "content": text} for text in TEXTS for role in ("user", "assistant")),
            {"role": "user", "content": [{"type": "text", "text": TEXTS[6]}, {"type": "text", "text": TEXTS[9]}]},
        ]
    )
    return out


# --------------------------------------------------------------------------------------------- the bound


def test_the_bound_counts_bytes_plus_the_framing_allowances() -> None:
    assert input_token_bound([{"role": "user", "content": "hi"}]) == PER_REQUEST_BOUND + PER_MESSAGE_BOUND + 4 + 2
    # Three bytes per CJK character: the ~4 characters per token estimate counts a quarter token.
    chinese = input_token_bound([{"role": "user", "content": "你好"}])
    assert chinese == PER_REQUEST_BOUND + PER_MESSAGE_BOUND + 4 + 6


def test_the_bound_is_above_what_the_issue_saw_billed() -> None:
    # "hi" was estimated at 7 input tokens and billed 12.
    messages = [{"role": "user", "content": "hi"}]
    assert estimate_messages_tokens(messages) == 7
    assert input_token_bound(messages) >= 12


def test_tools_tool_calls_names_schemas_and_images_count() -> None:
    base = [{"role": "user", "content": "hi"}]
    plain = input_token_bound(base)
    tools = input_token_bound(base, {"tools": [TOOL]})
    assert tools >= plain + TOOLS_BOUND + len(json.dumps([TOOL], separators=(",", ":")))
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    assert input_token_bound(base, {"response_format": schema}) > plain + len(json.dumps(schema)) - 10
    named = input_token_bound([{"role": "user", "content": "hi", "name": "alice_the_analyst"}])
    assert named == plain + len("alice_the_analyst")
    called = input_token_bound([*base, {"role": "assistant", "content": None, "tool_calls": [CALL]}])
    assert called >= plain + PER_MESSAGE_BOUND + len(json.dumps(CALL["function"]["arguments"]))  # type: ignore[index]
    answered = input_token_bound([*base, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])
    assert answered == plain + PER_MESSAGE_BOUND + len("tool") + len("call_1") + len("sunny")
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with_image = input_token_bound([{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}])
    assert with_image >= plain + IMAGE_PART_BOUND
    # Parameters that do not reach the prompt do not count.
    assert input_token_bound(base, {"temperature": 0.2, "max_tokens": 5, "stream": True}) == plain


def test_the_bound_never_fails_on_odd_shapes() -> None:
    assert input_token_bound([{"role": "user", "content": [{"type": "input_audio", "x": [1, 2]}]}]) > 0
    assert input_token_bound(["not a message"], {"tools": "odd"}) > 0  # type: ignore[list-item]


# -------------------------------------------------------------------------------- metered output, no usage


def test_output_estimate_is_capped_by_max_tokens() -> None:
    assert output_token_estimate("x" * 32) == 8
    assert output_token_estimate("x" * 32, max_tokens=7) == 7  # the issue: 8 counted for max_tokens 7
    assert output_token_estimate("ab", pieces=5) == 5  # about one token per streamed piece
    assert output_token_estimate("ab", pieces=5, max_tokens=3) == 3


def test_the_accumulator_counts_pieces_and_tool_call_text() -> None:
    acc = StreamAccumulator()
    for piece in ("Hel", "lo"):
        acc.add({"choices": [{"index": 0, "delta": {"content": piece}}]})
    call = {"index": 0, "id": "c1", "function": {"name": "lookup", "arguments": '{"q":'}}
    acc.add({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    acc.add({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}}]})
    acc.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    assert acc.pieces == 4
    assert acc.output_text() == 'Hello lookup{"q":"x"}'


def _gateway(**options: Any) -> Gateway:
    deployment = Deployment(
        provider="fake",
        model="fake-1",
        input_price_per_mtok=Decimal("2"),
        output_price_per_mtok=Decimal("8"),
        options=options,
    )
    settings = Settings(include_default_models=False, models=[ModelEntry(name="fake-chat", deployments=[deployment])])
    return Gateway(settings, ProviderPool(settings), default_price_book())


async def test_a_stream_without_usage_meters_at_most_max_tokens() -> None:
    # Two 12-character words: the text estimate is ceil(25 / 4) = 7, but the upstream stopped at max_tokens 2.
    gw = _gateway(omit_stream_usage=True, reply="abcdefghijkl abcdefghijkl abcdefghijkl")
    trace = TraceRecord(project_id="p", name="chat")
    raw = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 2}
    _ = [e async for e in gw.chat_stream(gw.prepare_chat(raw, trace))]
    span = trace.spans[0]
    assert span.usage_estimated is True
    assert span.output_tokens == 2
    assert span.input_tokens == 2  # the fake provider's own count (its tokenizer), not an estimate


async def test_unreported_input_uses_the_bound_once_routing_left_the_counted_deployment() -> None:
    gw = _gateway(omit_stream_usage=True)
    trace = TraceRecord(project_id="p", name="chat")
    messages = [{"role": "user", "content": "你好，世界"}]
    prep = gw.prepare_chat({"model": "fake-chat", "messages": messages}, trace)
    assert prep.unreported_input_tokens() == prep.input_tokens == 2
    prep.deployment = Deployment(provider="openai", model="gpt-4o-mini")  # a fallback without a tokenizer here
    assert prep.unreported_input_tokens() == input_token_bound(messages)


# ----------------------------------------------------------------------- against the bundled tokenizer


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LocalProvider]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed: run scripts/install.sh --dev")
    deployment = Deployment(provider="local", model="SmolLM2-135M-Instruct")
    provider = LocalProvider(deployment, Settings(local=LocalModelSettings(n_ctx=512)))
    yield provider
    asyncio.run(provider.aclose())


@pytest.mark.model
@pytest.mark.parametrize("index", range(len(conversations())))
def test_the_bound_is_at_least_the_smollm2_count(smollm2: LocalProvider, index: int) -> None:
    messages = conversations()[index]
    exact = smollm2.count_input_tokens(messages)  # the chat template applied, tokenized as the gateway bills
    assert input_token_bound(messages) >= exact
