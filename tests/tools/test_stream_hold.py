"""Reading tool calls from answers: whole, streamed (split over deltas, several calls and choices), legacy."""

from __future__ import annotations

from typing import Any

from pilothouse.gateway.streaming import sse
from pilothouse.gateway.tool_calls import StreamHold, ToolCall, calls_in_completion, offered_tools


def chunk(delta: dict[str, Any], index: int = 0) -> bytes:
    return sse({"object": "chat.completion.chunk", "choices": [{"index": index, "delta": delta}]})


def tool_delta(i: int, name: str = "", arguments: str = "") -> dict[str, Any]:
    return {"tool_calls": [{"index": i, "function": {"name": name, "arguments": arguments}}]}


def test_text_is_released_and_everything_from_the_first_tool_delta_is_held() -> None:
    hold = StreamHold()
    role, text = chunk({"role": "assistant", "content": ""}), chunk({"content": "Checking"})
    assert hold.feed(role) == role and not hold.text_released
    assert hold.feed(text) == text and hold.text_released
    events = [
        chunk(tool_delta(0, "fetch_url", "")),
        chunk(tool_delta(0, "", '{"url": "https://ex')),
        chunk(tool_delta(1, "lookup", "{}")),
        chunk(tool_delta(0, "", 'ample.com"}')),
        chunk({"content": "more"}),  # held too: order is kept
        b"data: not json\n\n",
        sse({"choices": [], "usage": {"total_tokens": 3}}),
    ]
    assert [hold.feed(e) for e in events] == [None] * len(events)
    assert hold.held == events
    assert hold.calls() == [ToolCall("fetch_url", '{"url": "https://example.com"}'), ToolCall("lookup", "{}")]


def test_calls_of_several_choices_and_the_legacy_function_call() -> None:
    hold = StreamHold()
    hold.feed(chunk(tool_delta(0, "a", "{}"), index=1))
    hold.feed(chunk({"function_call": {"name": "legacy", "arguments": "{}"}}, index=0))
    assert [c.name for c in hold.calls()] == ["legacy", "a"]


def test_whole_answers_and_offered_tools() -> None:
    payload = {
        "choices": [
            {"message": {"tool_calls": [{"function": {"name": "x", "arguments": '{"a": 1}'}}]}},
            {"message": {"function_call": {"name": "y", "arguments": "{}"}}},
            {"message": {"content": "plain"}},
        ]
    }
    assert calls_in_completion(payload) == [ToolCall("x", '{"a": 1}'), ToolCall("y", "{}")]
    params = {
        "tools": [{"type": "function", "function": {"name": "x"}}, {"type": "other"}],
        "functions": [{"name": "y"}],
    }
    assert offered_tools(params) == [("tools[0]", "x"), ("functions[0]", "y")]
