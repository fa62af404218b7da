"""The small parts of limits: UTC calendar periods, money formatting, run headers and the request hash."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pilothouse.config import LimitSettings
from pilothouse.errors import InvalidRequest
from pilothouse.gateway.limits.loop_guard import request_hash, run_caps
from pilothouse.gateway.limits.periods import format_reset, period_window
from pilothouse.gateway.validation import ChatBody, parse_chat_body
from pilothouse.money import usd


def ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("moment", "period", "tag", "start", "end"),
    [
        (ts(2026, 12, 31, 23, 59, 59), "day", "20261231", ts(2026, 12, 31), ts(2027, 1, 1)),
        (ts(2026, 12, 31, 23, 59, 59), "month", "202612", ts(2026, 12, 1), ts(2027, 1, 1)),
        (ts(2027, 1, 1), "day", "20270101", ts(2027, 1, 1), ts(2027, 1, 2)),
        (ts(2024, 2, 29, 12), "month", "202402", ts(2024, 2, 1), ts(2024, 3, 1)),
        (ts(2024, 2, 29, 12), "total", "total", 0.0, None),
    ],
)
def test_periods_follow_the_utc_calendar(moment: float, period: str, tag: str, start: float, end: float | None) -> None:
    window = period_window(period, moment)
    assert (window.tag, window.start, window.end) == (tag, start, end)


def test_unknown_period_and_reset_text() -> None:
    with pytest.raises(ValueError, match="day, month or total"):
        period_window("week", 0)
    assert format_reset(ts(2026, 12, 2)) == "2026-12-02 00:00 UTC"
    assert format_reset(None).startswith("never")


def test_usd_is_readable_and_exact() -> None:
    assert usd(Decimal(10)) == "$10.00"
    assert usd(Decimal("0.1")) == "$0.10"
    assert usd(Decimal("0.123")) == "$0.123"
    assert usd(86_000_000) == "$0.000086"  # pico-dollars
    assert usd(Decimal(1234)) == "$1,234.00"


def test_run_headers_may_only_lower_the_caps() -> None:
    settings = LimitSettings(run_max_calls=10, run_max_tokens=None, run_max_cost_usd=Decimal(1))
    assert run_caps(settings, [(b"accept", b"*/*")]) is None
    caps = run_caps(
        settings,
        [
            (b"x-pilothouse-run-id", b"r1"),
            (b"x-pilothouse-run-max-calls", b"50"),
            (b"x-pilothouse-run-max-tokens", b"1000"),
            (b"x-pilothouse-run-max-cost-usd", b"0.25"),
        ],
    )
    assert caps is not None
    assert (caps.run_id, caps.calls, caps.tokens, caps.cost_pico) == ("r1", 10, 1000, 250_000_000_000)
    for bad in (
        [(b"x-pilothouse-run-id", b"")],
        [(b"x-pilothouse-run-id", b"r"), (b"x-pilothouse-run-max-cost-usd", b"-1")],
    ):
        with pytest.raises(InvalidRequest):
            run_caps(settings, bad)


def test_request_hash_ignores_key_order_user_and_streaming_only() -> None:
    a = parse_chat_body({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0, "user": "u"})
    b = parse_chat_body(
        {"temperature": 0, "messages": [{"content": "x", "role": "user"}], "model": "m", "stream": True}
    )
    c = parse_chat_body({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.5})
    assert request_hash(a) == request_hash(b) != request_hash(c)


def test_request_hash_of_values_orjson_refuses_is_stable_or_a_400() -> None:
    """Integers past 64 bits hash through the standard library; nesting past every encoder is a 400, not a 500."""

    def body(**extra: object) -> ChatBody:
        return parse_chat_body({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra})

    big = body(metadata={"n": 2**70})
    assert request_hash(big) == request_hash(body(metadata={"n": 2**70})) != request_hash(body(metadata={"n": 2**71}))
    deep: object = "leaf"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidRequest) as err:
        request_hash(body(metadata=deep))
    assert err.value.code == "invalid_run_request"
