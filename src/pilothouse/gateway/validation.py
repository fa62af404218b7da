"""Validating OpenAI-format request bodies at the boundary, with messages that say what to fix.

Hand-written checks (not a pydantic model) because this runs on every request of the hot path and the
error messages must name the OpenAI field exactly as the caller sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pilothouse.errors import InvalidRequest

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# Fields we understand; anything else is passed through to OpenAI-compatible upstreams untouched.
_CONTROL = {"model", "messages", "stream", "stream_options", "variables"}


@dataclass(slots=True)
class ChatBody:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    params: dict[str, Any]
    user: str | None
    max_tokens: int | None


def _shown(value: Any, limit: int = 60) -> str:
    """A short, safe rendering of a caller's value for an error message."""
    try:
        text = repr(value)
    except Exception:  # e.g. an integer too long to print
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{name}' must be a number, got {type(value).__name__}", param=name)
    if not lo <= value <= hi:
        raise InvalidRequest(f"'{name}' must be between {lo:g} and {hi:g}, got {_shown(value)}", param=name)


def _integer(value: Any) -> int | None:
    """`value` as an int if JSON counts it as an integer (`8` or `8.0`, as JSON Schema does), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return None


MAX_TOKENS_LIMIT = 2**31 - 1
"""The largest `max_tokens` accepted: far past any model's output, and small enough that a request's
reservation (input bound + max_tokens, and its price in pico-dollars) fits the stores' 64-bit integers."""


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    number = _integer(value)
    if number is None or number < 1:
        raise InvalidRequest(f"'{name}' must be a positive integer, got {_shown(value)}", param=name)
    if number > MAX_TOKENS_LIMIT:
        raise InvalidRequest(f"'{name}' must be at most {MAX_TOKENS_LIMIT}, got {_shown(value)}", param=name)
    return number


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise InvalidRequest("'messages' is required: a list of {role, content} objects", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list of {role, content} objects", param="messages")
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequest(f"'{where}' must be an object with 'role' and 'content'", param=where)
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidRequest(
                f"'{where}.role' must be one of {', '.join(sorted(ROLES))}, got {_shown(role)}",
                param=f"{where}.role",
            )
        content = msg.get("content")
        if content is None:
            if not (role == "assistant" and (msg.get("tool_calls") or msg.get("function_call"))):
                raise InvalidRequest(f"'{where}.content' is required for role {role!r}", param=f"{where}.content")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or "type" not in part:
                    raise InvalidRequest(
                        f"'{where}.content[{j}]' must be a content part object with a 'type'",
                        param=f"{where}.content",
                    )
        elif not isinstance(content, str):
            raise InvalidRequest(
                f"'{where}.content' must be a string or a list of content parts", param=f"{where}.content"
            )
        if role == "tool" and not msg.get("tool_call_id"):
            raise InvalidRequest(f"'{where}.tool_call_id' is required for role 'tool'", param=f"{where}.tool_call_id")
        if role == "tool" and not isinstance(msg["tool_call_id"], str):
            raise InvalidRequest(f"'{where}.tool_call_id' must be a string", param=f"{where}.tool_call_id")
        _check_tool_calls(msg, where)
    return messages


def _check_tool_calls(msg: dict[str, Any], where: str) -> None:
    """`tool_calls`: a list of {id, type: 'function', function: {name, arguments}}; `function_call` likewise."""
    calls = msg.get("tool_calls")
    if calls is not None:
        shape = "a list of {'id': ..., 'type': 'function', 'function': {'name': ..., 'arguments': '<JSON text>'}}"
        if not isinstance(calls, list):
            raise InvalidRequest(f"'{where}.tool_calls' must be {shape}", param=f"{where}.tool_calls")
        for k, call in enumerate(calls):
            if not isinstance(call, dict):
                raise InvalidRequest(
                    f"'{where}.tool_calls[{k}]' must be an object: {where}.tool_calls is {shape}",
                    param=f"{where}.tool_calls",
                )
            _check_function(call.get("function"), f"{where}.tool_calls[{k}].function", f"{where}.tool_calls")
    _check_function(msg.get("function_call"), f"{where}.function_call", f"{where}.function_call")


def _check_function(fn: Any, where: str, param: str) -> None:
    if fn is None:
        return
    if not isinstance(fn, dict):
        raise InvalidRequest(f"'{where}' must be an object {{'name': ..., 'arguments': ...}}", param=param)
    if fn.get("name") is not None and not isinstance(fn["name"], str):
        raise InvalidRequest(f"'{where}.name' must be a string", param=param)
    arguments = fn.get("arguments")
    if arguments is not None and not isinstance(arguments, str | dict):
        raise InvalidRequest(f"'{where}.arguments' must be a string of JSON text", param=param)


def parse_chat_body(body: Any, *, messages_optional: bool = False) -> ChatBody:
    """Check a chat-completions body; `messages_optional` is for prompt references (rendered messages)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required: the name of a model from GET /v1/models", param="model")
    raw_messages = body.get("messages")
    messages = [] if messages_optional and raw_messages is None else _check_messages(raw_messages)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", param="stream")
    stream_options = body.get("stream_options")
    if stream_options is None:
        stream_options = {}
    elif not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    include_usage = stream_options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise InvalidRequest(
            f"'stream_options.include_usage' must be true or false, got {_shown(include_usage)}",
            param="stream_options.include_usage",
        )
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    max_tokens = _positive_int(body, "max_tokens")
    max_completion = _positive_int(body, "max_completion_tokens")
    n = _positive_int(body, "n")
    if n is not None and n != 1:
        raise InvalidRequest("'n' other than 1 is not supported: send separate requests", param="n")
    seed = body.get("seed")
    if seed is not None and _integer(seed) is None:
        raise InvalidRequest("'seed' must be an integer", param="seed")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or a list of up to 4 strings", param="stop")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be a list of tool objects", param="tools")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise InvalidRequest(
                    f"'tools[{i}]' must be {{'type': 'function', 'function': {{'name': ..., 'parameters': ...}}}}",
                    param=f"tools[{i}]",
                )
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")):
        raise InvalidRequest(
            "'response_format' must be {'type': 'text' | 'json_object' | 'json_schema', ...}",
            param="response_format",
        )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string", param="user")
    params = {k: v for k, v in body.items() if k not in _CONTROL and v is not None}
    return ChatBody(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=bool(include_usage),
        params=params,
        user=user,
        max_tokens=max_completion or max_tokens,
    )


def parse_embeddings_body(body: Any) -> tuple[str, list[str], str]:
    """Returns (model, inputs, encoding_format)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required: the name of an embedding model from GET /v1/models", param="model")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        inputs = raw
    elif isinstance(raw, list) and raw and all(isinstance(x, int | list) for x in raw):
        raise InvalidRequest("token-id input is not supported: send the text itself", param="input")
    else:
        raise InvalidRequest("'input' must be a non-empty string or a non-empty list of strings", param="input")
    for i, text in enumerate(inputs):
        if not text:
            where = "input" if isinstance(raw, str) else f"input[{i}]"
            raise InvalidRequest(f"'{where}' is an empty string: every input must have some text", param="input")
    if len(inputs) > 2048:
        raise InvalidRequest(f"'input' has {len(inputs)} items; at most 2048 per request", param="input")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dims = body.get("dimensions")
    if dims is not None:
        raise InvalidRequest("'dimensions' is not supported by the local embedding models", param="dimensions")
    return model, inputs, fmt
