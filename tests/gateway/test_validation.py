"""The request validator names the offending field and says what to send instead."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse.errors import InvalidRequest
from pilothouse.gateway.validation import parse_chat_body, parse_embeddings_body

OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("patch", "param", "fragment"),
    [
        ({"model": None}, "model", "'model' is required"),
        ({"messages": None}, "messages", "'messages' is required"),
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": ["hi"]}, "messages[0]", "must be an object"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "must be one of"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "is required"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string or a list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id", "tool_call_id"),
        ({"temperature": "hot"}, "temperature", "must be a number"),
        ({"temperature": 3}, "temperature", "between 0 and 2"),
        ({"top_p": 1.5}, "top_p", "between 0 and 1"),
        ({"max_tokens": -1}, "max_tokens", "positive integer"),
        ({"max_tokens": True}, "max_tokens", "positive integer"),
        ({"n": 2}, "n", "not supported"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "up to 4"),
        ({"seed": 1.5}, "seed", "integer"),
        ({"tools": [{"type": "function"}]}, "tools[0]", "'function'"),
        ({"response_format": {"type": "xml"}}, "response_format", "json_object"),
        ({"user": 7}, "user", "string"),
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
    ],
)
def test_bad_embedding_bodies(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_embeddings_body(body)
