"""The Anthropic Messages API wire format, translated to and from OpenAI chat completions (pure functions:
no transport, so each direction is testable on plain dicts).

Requests (OpenAI -> Anthropic): system/developer messages become the top-level `system`; user,
assistant and tool messages become content blocks (assistant `tool_calls` -> `tool_use` blocks, `tool`
messages -> `tool_result` blocks in a user turn), and consecutive turns of one role are merged so
roles alternate. `max_tokens` (required by Anthropic) comes from `max_completion_tokens`/`max_tokens`,
else `options["max_tokens"]` (default 1024). `temperature` is clamped to Anthropic's 0..1, `stop`
becomes `stop_sequences`, `user` becomes `metadata.user_id`, function tools become Anthropic tools and
`tool_choice` / `parallel_tool_calls` are mapped. `response_format` json_object / json_schema becomes
a system instruction (Anthropic has no JSON mode). Fields Anthropic lacks (seed, penalties, logprobs,
logit_bias) are dropped; `n` > 1 is refused.

Responses come back as `chat.completion` bodies, streams as `chat.completion.chunk` dicts ending with
a usage-only chunk (`choices: []`). Usage follows OpenAI's meaning: `prompt_tokens` includes cached
tokens (`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`), and
`prompt_tokens_details.cached_tokens` is `cache_read_input_tokens`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from pilothouse.gateway.providers.base import ChatRequest, ChatResult, Chunk, Message, ProviderError, Usage
from pilothouse.gateway.providers.errors import error_from_event

DEFAULT_MAX_TOKENS = 1024

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_request", f"anthropic: {message}")


# --- request: OpenAI -> Anthropic ---------------------------------------------------------------


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


def _image(image_url: Any) -> dict[str, Any]:
    url = image_url.get("url", "") if isinstance(image_url, dict) else str(image_url)
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url")))
        else:
            raise _bad(f"unsupported content part type {kind!r}")
    return blocks


def _tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        tool_input = orjson.loads(arguments) if isinstance(arguments, str | bytes) else arguments
    except orjson.JSONDecodeError as exc:
        raise _bad(f"tool call {call.get('id')!r} has arguments that are not JSON") from exc
    if not isinstance(tool_input, dict):
        raise _bad(f"tool call {call.get('id')!r} arguments must be a JSON object")
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": tool_input}


def _turn(message: Message) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    content = message.get("content")
    if role == "user":
        return "user", _content_blocks(content)
    if role == "assistant":
        blocks = _content_blocks(content)
        blocks.extend(_tool_use_block(call) for call in message.get("tool_calls") or ())
        return "assistant", blocks
    if role == "tool":
        result = content if isinstance(content, str) else _content_blocks(content)
        block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": result}
        return "user", [block]
    raise _bad(f"unsupported message role {role!r}")


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        raise _bad(f"only function tools are supported, not {tool.get('type')!r}")
    return {
        "name": function.get("name"),
        "description": function.get("description", ""),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        result = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise _bad(f"unsupported tool_choice {choice!r}")
    if parallel is False:
        result = result or {"type": "auto"}
        result["disable_parallel_tool_use"] = True
    return result


def translate_request(request: ChatRequest, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    """An Anthropic Messages API body for an OpenAI-shaped chat request."""
    params = request.params
    if int(params.get("n") or 1) > 1:
        raise _bad("n > 1 is not supported")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.get("role") in ("system", "developer"):
            if text := _text_of(message.get("content")):
                system.append(text)
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # tool results must lead a user turn
        if turn["role"] == "user" and len(turn["content"]) > 1:
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")

    max_tokens = params.get("max_completion_tokens") or params.get("max_tokens") or default_max_tokens
    body: dict[str, Any] = {"model": request.model, "max_tokens": int(max_tokens), "messages": turns}
    if (temperature := params.get("temperature")) is not None:
        body["temperature"] = min(float(temperature), 1.0)
    for name in ("top_p", "top_k"):
        if params.get(name) is not None:
            body[name] = params[name]
    if (stop := params.get("stop")) is not None:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if params.get("user"):
        body["metadata"] = {"user_id": str(params["user"])}
    if tools := params.get("tools"):
        body["tools"] = [_tool(tool) for tool in tools]
    if (choice := _tool_choice(params.get("tool_choice"), params.get("parallel_tool_calls"))) is not None:
        body["tool_choice"] = choice
    response_format = params.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        instruction = _JSON_INSTRUCTION
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            instruction += " It must conform to this JSON schema: " + orjson.dumps(schema).decode()
        system.append(instruction)
    if system:
        body["system"] = "\n\n".join(system)
    return body


# --- answers: Anthropic -> OpenAI ---------------------------------------------------------------


def usage_dict(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI `usage` from Anthropic usage counts."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _usage(usage: dict[str, Any]) -> Usage:
    details = usage["prompt_tokens_details"]
    return Usage(usage["prompt_tokens"], usage["completion_tokens"], details["cached_tokens"])


def chat_result(message: dict[str, Any]) -> ChatResult:
    """A whole answer from an Anthropic message, or the ProviderError an error body stands for."""
    if message.get("type") == "error":
        raise error_from_event("anthropic", message.get("error"))
    body = translate_response(message)
    return ChatResult(body=body, usage=_usage(body["usage"]))


def translate_response(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI `chat.completion` body for an Anthropic message."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            tool_calls.append({"id": block.get("id"), "type": "function", "function": function})
    content = "".join(texts) if texts or not tool_calls else None
    reply: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    finish = FINISH_REASONS.get(message.get("stop_reason") or "", "stop")
    choice = {"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}
    return {
        "id": message.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model", ""),
        "choices": [choice],
        "usage": usage_dict(message.get("usage") or {}),
    }


async def translate_stream(events: AsyncIterator[tuple[str, bytes]], model: str) -> AsyncGenerator[Chunk, None]:
    """OpenAI chunks from Anthropic's event stream; raises ProviderError on `error` or truncation."""
    base: dict[str, Any] = {
        "id": "",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    usage: dict[str, Any] = {}
    tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
    finish: str | None = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    async for event_name, data in events:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError("upstream", f"anthropic stream sent invalid JSON: {exc}", status=200) from exc
        kind = event.get("type") or event_name
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                yield chunk({"content": delta.get("text", "")})
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                index = tool_index.get(event.get("index", -1))
                if index is not None:
                    yield chunk({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})
        elif kind == "message_start":
            message = event.get("message") or {}
            base["id"] = message.get("id", "")
            base["model"] = message.get("model") or model
            usage.update(message.get("usage") or {})
            yield chunk({"role": "assistant", "content": ""})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = len(tool_index)
                tool_index[event.get("index", index)] = index
                function = {"name": block.get("name"), "arguments": ""}
                call = {"index": index, "id": block.get("id"), "type": "function", "function": function}
                yield chunk({"tool_calls": [call]})
            elif block.get("type") == "text" and block.get("text"):
                yield chunk({"content": block["text"]})
        elif kind == "message_delta":
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            if stop_reason:
                finish = FINISH_REASONS.get(stop_reason, "stop")
                yield chunk({}, finish)
        elif kind == "message_stop":
            break
        elif kind == "error":
            raise error_from_event("anthropic", event.get("error"))
        # ping, content_block_stop and unknown (future) events need no chunk.
    else:
        if finish is None:
            raise ProviderError("unavailable", "anthropic stream ended before message_stop")
    yield {**base, "choices": [], "usage": usage_dict(usage)}
