"""The test upstream bills like a real one: never more completion tokens than `max_tokens` asks for."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.support.flaky_upstream import COMPLETION_TOKENS, FlakyUpstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[FlakyUpstream]:
    up = FlakyUpstream("up")
    up.start()
    yield up
    up.stop()


def _post(upstream: FlakyUpstream, **body: object) -> httpx.Response:
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{upstream.base_url}/chat/completions", json=payload, timeout=10)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_a_completion_stops_at_max_tokens(upstream: FlakyUpstream, field: str) -> None:
    whole = _post(upstream).json()
    assert whole["usage"]["completion_tokens"] == COMPLETION_TOKENS
    assert whole["choices"][0]["message"]["content"] == "Hello from up"
    cut = _post(upstream, **{field: 2}).json()
    assert cut["usage"]["completion_tokens"] == 2
    assert cut["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello"},
        "finish_reason": "length",
    }


def test_a_stream_stops_at_max_tokens(upstream: FlakyUpstream) -> None:
    resp = _post(upstream, stream=True, max_tokens=3, stream_options={"include_usage": True})
    events = [orjson.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c["choices"])
    finish = [c["choices"][0]["finish_reason"] for c in events if c["choices"] and c["choices"][0]["finish_reason"]]
    assert (text, finish, events[-1]["usage"]["completion_tokens"]) == ("Hello from", ["length"], 3)
