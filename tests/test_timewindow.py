"""The one time parser of `since`/`until` (pilothouse/timewindow.py): the forms it accepts and its errors."""

from __future__ import annotations

import datetime as dt

import pytest

from pilothouse.errors import InvalidRequest
from pilothouse.timewindow import parse_time, time_param

NOW = 1_000_000.0
DAY1 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        (" 30m", 1800),
        ("24h", 86_400),
        ("1.5h", 5400),
        ("7d", 7 * 86_400),
        ("2 w", 14 * 86_400),
    ],
)
def test_durations_are_before_now(text: str, seconds: float) -> None:
    assert parse_time(text, now=NOW) == NOW - seconds


def test_absolute_times() -> None:
    assert parse_time("1700000000", now=NOW) == 1_700_000_000.0
    assert parse_time("1700000000.25", now=NOW) == 1_700_000_000.25
    assert parse_time("2025-03-01T10:00:00", now=NOW) == DAY1  # no zone: UTC
    assert parse_time("2025-03-01T10:00:00Z", now=NOW) == DAY1
    assert parse_time("2025-03-01T12:00:00+02:00", now=NOW) == DAY1
    assert parse_time("2025-03-01", now=NOW) == DAY1 - 10 * 3600


def test_an_unknown_form_says_what_is_accepted() -> None:
    with pytest.raises(
        ValueError, match=r"expected a duration before now \(90s, 30m, 24h, 7d, 2w\), epoch seconds or ISO 8601"
    ):
        parse_time("last week", now=NOW)
    with pytest.raises(ValueError, match="got '7y'"):
        parse_time("7y", now=NOW)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a finite time"):
        parse_time(text, now=NOW)


def test_absolute_only() -> None:
    assert parse_time("2025-03-01T10:00:00Z", durations=False) == DAY1
    with pytest.raises(ValueError, match="a duration is not accepted here; expected epoch seconds or ISO 8601"):
        parse_time("7d", durations=False)
    with pytest.raises(ValueError, match=r"^expected epoch seconds or ISO 8601") as raised:
        parse_time("yesterday", durations=False)
    assert "duration" not in str(raised.value)


def test_time_param_is_a_400_naming_the_parameter() -> None:
    assert time_param(None, "until") is None
    assert time_param("1d", "since", now=NOW) == NOW - 86_400
    with pytest.raises(InvalidRequest) as raised:
        time_param("soon", "until")
    assert raised.value.status == 400 and raised.value.param == "until"
    assert raised.value.message.startswith("'until': expected a duration before now")
