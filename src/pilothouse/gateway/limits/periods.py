"""Budget periods on the UTC calendar: a day runs 00:00-24:00 UTC, a month from the 1st, `total` forever."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    tag: str
    """Part of the counter key: 20261201 (day), 202612 (month), total."""
    start: float
    """Epoch seconds (0 for total)."""
    end: float | None
    """When the next period starts (the budget resets); None for total."""

    @property
    def end_ms(self) -> int | None:
        return None if self.end is None else int(self.end * 1000)


def period_window(period: str, now: float) -> PeriodWindow:
    """The period of `period` that `now` (epoch seconds) falls in."""
    return _window(period, int(now // 86_400))  # POSIX days start at UTC midnight


@lru_cache(maxsize=64)
def _window(period: str, day: int) -> PeriodWindow:
    moment = dt.datetime.fromtimestamp(day * 86_400, tz=dt.UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return PeriodWindow(start.strftime("%Y%m%d"), start.timestamp(), (start + dt.timedelta(days=1)).timestamp())
    if period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (
            start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        )
        return PeriodWindow(start.strftime("%Y%m"), start.timestamp(), following.timestamp())
    if period == "total":
        return PeriodWindow("total", 0.0, None)
    raise ValueError(f"unknown budget period {period!r}: day, month or total")


def format_reset(end: float | None) -> str:
    """`2026-12-02 00:00 UTC`, or `never (a total budget)`."""
    if end is None:
        return "never (a total budget does not reset)"
    return dt.datetime.fromtimestamp(end, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
