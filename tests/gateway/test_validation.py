"""The request validator names the offending field and says what to send instead."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.errors import InvalidRequest
from pilothouse.gateway.tokens import MESSAGE_OVERHEAD, estimate_messages_tokens
from pilothouse.gateway.validation import parse_chat_body, parse_embeddings_body

OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ASSISTANT: dict[str, Any] = {"role": "assistant", "content": None}
TOOL_CALL_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"tool_calls": "call the weather tool"}, "messages[1].tool_calls", "'messages[1].tool_calls' must"),
    ({"tool_calls": {"id": "c"}}, "messages[1].tool_calls", "must be a list of"),
    ({"tool_calls": ["c1", 2]}, "messages[1].tool_calls", "'messages[1].tool_calls[0]' must be an"),
    ({"tool_calls": [{"id": "c", "function": "f"}]}, "messages[1].tool_calls", "function' must be an"),
    ({"tool_calls": [{"function": {"name": 5}}]}, "messages[1].tool_calls", "function.name' must be"),
    ({"tool_calls": [{"function": {"arguments": [1]}}]}, "messages[1].tool_calls", "arguments' must"),
    ({"function_call": "f"}, "messages[1].function_call", "'messages[1].function_call' must be"),
]


@pytest.mark.parametrize(
    ("patch", "param", "fragment"),
    [
        ({"model": None}, "model", "'model' is required"),
        ({"messages": None}, "messages", "'messages' is required"),
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": ["hi"]}, "messages[0]", "must be an object"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "must be one of"),
        ({"messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role", "must be one of"),
        ({"messages": [{"role": {"a": 1}, "content": "x"}]}, "messages[0].role", "must be one of"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "is required"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string or a list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id", "tool_call_id"),
        ({"temperature": "hot"}, "temperature", "must be a number"),
        ({"temperature": 3}, "temperature", "between 0 and 2"),
        ({"top_p": 1.5}, "top_p", "between 0 and 1"),
        ({"max_tokens": -1}, "max_tokens", "positive integer"),
        ({"max_tokens": True}, "max_tokens", "positive integer"),
        ({"max_tokens": 2**31}, "max_tokens", "at most 2147483647"),
        ({"max_completion_tokens": 2**63}, "max_completion_tokens", "at most 2147483647"),
        ({"n": 2}, "n", "not supported"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "up to 4"),
        ({"seed": 1.5}, "seed", "integer"),
        ({"tools": [{"type": "function"}]}, "tools[0]", "'function'"),
        ({"response_format": {"type": "xml"}}, "response_format", "json_object"),
        ({"response_format": {"type": ["text"]}}, "response_format", "json_object"),
        ({"user": 7}, "user", "string"),
        ({"stream_options": {"include_usage": "maybe"}}, "stream_options.include_usage", "true or false"),
        ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage", "true or false"),
        ({"stream_options": "yes"}, "stream_options", "must be an object"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": 7}]}, "messages[0].tool_call_id", "string"),
        *[
            ({"messages": [{"role": "user", "content": "hi"}, {**ASSISTANT, **patch}]}, param, fragment)
            for patch, param, fragment in TOOL_CALL_CASES
        ],
    ],
)
def test_bad_chat_fields_are_named(patch: dict[str, Any], param: str, fragment: str) -> None:
    body = {**OK, **patch}
    with pytest.raises(InvalidRequest) as err:
        parse_chat_body({k: v for k, v in body.items() if v is not None})
    assert err.value.param == param
    assert fragment in err.value.message


def test_good_body_keeps_passthrough_params_and_drops_control_fields() -> None:
    parsed = parse_chat_body(
        {**OK, "temperature": 0, "max_completion_tokens": 9, "logprobs": True, "variables": {"a": 1}, "stream": True}
    )
    assert parsed.max_tokens == 9 and parsed.stream is True
    assert parsed.params == {"temperature": 0, "max_completion_tokens": 9, "logprobs": True}


def test_assistant_tool_call_message_may_omit_content() -> None:
    msg = {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {}}]}
    parse_chat_body({**OK, "messages": [msg]})


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_chat_body([1, 2])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"input": "x"}, "'model' is required"),
        ({"model": "e", "input": []}, "non-empty"),
        ({"model": "e", "input": [[1, 2]]}, "token-id input"),
        ({"model": "e", "input": "x", "encoding_format": "hex"}, "'float' or 'base64'"),
        ({"model": "e", "input": ""}, "'input' is an empty string"),
        ({"model": "e", "input": ["a", "", "c"]}, "'input\\[1\\]' is an empty string"),
    ],
)
def test_bad_embedding_bodies(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_embeddings_body(body)


def test_well_formed_tool_calls_and_include_usage_pass() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
    ]
    parsed = parse_chat_body({**OK, "messages": messages, "stream": True, "stream_options": {"include_usage": True}})
    assert parsed.include_usage is True and parsed.messages[1]["tool_calls"] == [call]
    assert parse_chat_body({**OK, "stream_options": None}).include_usage is False
    assert parse_chat_body({**OK, "stream_options": {}}).include_usage is False


def test_token_estimates_never_fail_on_odd_shapes() -> None:
    """The estimate runs on whatever it is given (validation refuses these at the boundary)."""
    odd: list[Any] = [
        {"role": "assistant", "tool_calls": "a string"},
        {"role": "assistant", "tool_calls": ["x", 3, {"function": "f"}, {"function": {"name": None}}]},
        "not a message",
    ]
    assert estimate_messages_tokens(odd) == 2 + 2 * MESSAGE_OVERHEAD


def test_integral_floats_count_as_integers() -> None:
    """JSON (and JSON Schema) make no difference between 8 and 8.0; fractions and bools stay refused."""
    parsed = parse_chat_body({**OK, "max_tokens": 8.0, "n": 1.0, "seed": 42.0})
    assert parsed.max_tokens == 8 and isinstance(parsed.max_tokens, int)
    for bad in (8.5, 1e300, True):
        with pytest.raises(InvalidRequest, match="positive integer"):
            parse_chat_body({**OK, "max_tokens": bad})
