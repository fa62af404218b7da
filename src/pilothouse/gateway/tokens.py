"""Token counts for when neither a tokenizer nor the provider gives one: a bound for reservations, an
estimate for display.

We never depend on tiktoken (it downloads encodings at first use). Two different numbers, never mixed up:

* `input_token_bound` is what budgets and token rate limits reserve for a provider without a tokenizer
  here. It is a true upper bound: byte-level BPE (OpenAI, Llama 3, Claude) and SentencePiece with byte
  fallback emit at most one token per byte, WordPiece at most one per character, so the UTF-8 bytes of
  every text the upstream sees bound its tokens; chat templates add role markers and separators, covered
  by a fixed allowance per message and per request. Spans mark such counts estimated.
* `estimate_messages_tokens` is the rule of thumb of about four characters per token plus four per
  message: close on English prose, but 1.9 to 2.2 times too low on Chinese, JSON or digits. It is for
  forecasts (`pilothouse cost estimate`) and context-window checks, never for a reservation.

The allowances (`bench/reservation_ratio.py` measures the bound against real tokenizers; results in
docs/benchmarks.md):

* `PER_MESSAGE_BOUND` = 16: the largest documented per-message framing is 3 to 5 tokens (OpenAI's
  cookbook counts 3 per message and 1 per name; ChatML `<|im_start|>role\\n...<|im_end|>\\n` 5; Llama 3
  `<|start_header_id|>role<|end_header_id|>\\n\\n...<|eot_id|>` 5; Gemma 5); 16 leaves 3x that, and absorbs
  a SentencePiece dummy-prefix token per text.
* `PER_REQUEST_BOUND` = 64: the reply priming (OpenAI 3, Llama 3 `assistant` header 4, BOS 1) plus the
  system prompt some templates add on their own (SmolLM2's default system message is about 20 tokens,
  Llama 3.2's `Cutting Knowledge Date ... Today Date ...` block about 30).
* `TOOLS_BOUND` = 600 once per request with tools (Anthropic documents a tool-use system prompt of up to
  530 tokens, Claude 3 Opus; OpenAI's `namespace functions` preamble is about 20), plus `PER_MESSAGE_BOUND`
  per tool; tool definitions, `response_format` schemas and tool calls count as their JSON with non-ASCII
  escaped (`\\uXXXX`, as templates that re-serialize JSON write it), so a template's own rendering of them
  cannot be longer.
* `IMAGE_PART_BOUND` = 4,096 per image part: OpenAI's gpt-4o (at most 85 + 170 x 8 tiles = 1,445), the
  gpt-4.1/o-series patch models (at most 1,536 patches x 2.46 = 3,779, gpt-4.1-nano) and Claude (about 1,600
  at its 1.15 megapixel limit) stay under it. gpt-4o-mini counts an image as up to about 48,000 tokens (at a
  33x lower price per token), which this does not cover: send max_tokens and budget with room for it.
"""

from __future__ import annotations

import json
import math
from typing import Any

MESSAGE_OVERHEAD = 4
"""Per-message framing in the display estimate (`estimate_messages_tokens`)."""

PER_MESSAGE_BOUND = 16
PER_REQUEST_BOUND = 64
TOOLS_BOUND = 600
IMAGE_PART_BOUND = 4_096

_BOUND_PARAMS = ("tools", "functions", "tool_choice", "function_call", "response_format")
"""Request parameters an upstream renders into the prompt."""


# -- the display estimate ---------------------------------------------------------------------------------


def estimate_text_tokens(text: str) -> int:
    """About four characters per token: a display estimate, not a bound."""
    return math.ceil(len(text) / 4) if text else 0


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    else:
        parts = []
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():  # shapes are checked in validation; estimates never fail
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    return " ".join(parts)


def estimate_messages_tokens(messages: list[dict[str, Any]]) -> int:
    """The display estimate of a conversation's input tokens (forecasts, context-window checks)."""
    return sum(estimate_text_tokens(message_text(m)) + MESSAGE_OVERHEAD for m in messages if isinstance(m, dict)) + 2


def output_token_estimate(text: str, *, pieces: int = 0, max_tokens: int | None = None) -> int:
    """Output tokens to meter when the upstream reports none: the larger of the text estimate and the
    number of streamed pieces (servers send about one token per chunk), never more than the request's
    `max_tokens` (an upstream does not generate past it)."""
    tokens = max(estimate_text_tokens(text), pieces)
    return tokens if max_tokens is None else min(tokens, max_tokens)


# -- the reservation bound ----------------------------------------------------------------------------------


def _json_bytes(value: Any) -> int:
    """Bytes of `value` as compact JSON with non-ASCII escaped: at least as long as any rendering of it."""
    try:
        return len(json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=str))
    except (TypeError, ValueError):  # circular or odd values cannot come from a JSON body; stay an upper bound
        return len(repr(value).encode("utf-8", "surrogatepass"))


def _text_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _part_bound(part: Any) -> int:
    if isinstance(part, dict):
        kind = part.get("type")
        text = part.get("text")
        if kind == "text" and isinstance(text, str):
            return _text_bytes(text) + PER_MESSAGE_BOUND
        if kind == "image_url" or kind == "image":
            return IMAGE_PART_BOUND + PER_MESSAGE_BOUND
    return _json_bytes(part) + PER_MESSAGE_BOUND  # audio, files, unknown parts: their data bounds them


def message_token_bound(message: Any) -> int:
    """An upper bound on the tokens one message becomes under any chat template (see the module docstring)."""
    if not isinstance(message, dict):
        return _json_bytes(message) + PER_MESSAGE_BOUND
    total = PER_MESSAGE_BOUND
    for key, value in message.items():
        if value is None:
            continue
        if key == "content" and isinstance(value, str):
            total += _text_bytes(value)
        elif key == "content" and isinstance(value, list):
            total += sum(_part_bound(part) for part in value)
        elif isinstance(value, str):
            total += _text_bytes(value)  # role, name, tool_call_id
        else:
            total += _json_bytes(value)  # tool_calls, function_call, anything else passed through
    return total


def input_token_bound(messages: list[Any], params: dict[str, Any] | None = None) -> int:
    """An upper bound on the input tokens of a chat request (`messages` and the request parameters that
    upstreams render into the prompt: tools, functions, tool_choice, response_format). What a reservation
    uses where the provider has no tokenizer here."""
    total = PER_REQUEST_BOUND + sum(message_token_bound(m) for m in messages)
    if params:
        tools = params.get("tools") or params.get("functions")
        if tools:
            total += TOOLS_BOUND + PER_MESSAGE_BOUND * (len(tools) if isinstance(tools, list) else 1)
        for name in _BOUND_PARAMS:
            value = params.get(name)
            if value is not None and not isinstance(value, bool):
                total += _json_bytes(value) + PER_MESSAGE_BOUND
    return total


def texts_token_bound(texts: list[str]) -> int:
    """An upper bound on the input tokens of an embeddings call: each text's UTF-8 bytes plus
    `PER_MESSAGE_BOUND` for the special tokens an encoder adds ([CLS]/[SEP], BOS/EOS, a dummy prefix)."""
    return sum(_text_bytes(text) + PER_MESSAGE_BOUND for text in texts)
