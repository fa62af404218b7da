"""Points in time as people write them for reports and filters (`since`, `until`), parsed in one place for
every API route (and so for the CLI and SDK, which pass them through):

- a duration before now: a number and a unit, `90s`, `30m`, `24h`, `7d`, `2w` (`1.5h` too);
- epoch seconds: `1700000000`, `1700000000.5`;
- ISO 8601: `2025-03-01`, `2025-03-01T10:00:00`, `2025-03-01T10:00:00Z`, `...+02:00` (no zone: UTC).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from typing import overload

from pilothouse.errors import InvalidRequest

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_ABSOLUTE = "epoch seconds or ISO 8601 (2025-03-01, 2025-03-01T10:00:00Z)"
_ANY = f"a duration before now (90s, 30m, 24h, 7d, 2w), {_ABSOLUTE}"


def parse_time(text: str, *, now: float | None = None, durations: bool = True) -> float:
    """Epoch seconds for `text` (see the module docstring); `durations=False` accepts only absolute times.
    ValueError says what is accepted."""
    match = _DURATION.match(text)
    if match:
        if not durations:
            raise ValueError(f"a duration is not accepted here; expected {_ABSOLUTE}, got {text!r}")
        value = (time.time() if now is None else now) - float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        try:
            value = float(text)
        except ValueError:
            return _iso(text, _ANY if durations else _ABSOLUTE)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite time, got {text!r}")
    return value


def _iso(text: str, accepted: str) -> float:
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected {accepted}, got {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@overload
def time_param(text: str, param: str, *, now: float | None = None, durations: bool = True) -> float: ...
@overload
def time_param(text: None, param: str, *, now: float | None = None, durations: bool = True) -> None: ...
@overload
def time_param(text: str | None, param: str, *, now: float | None = None, durations: bool = True) -> float | None: ...


def time_param(text: str | None, param: str, *, now: float | None = None, durations: bool = True) -> float | None:
    """A query parameter's time: None stays None; a bad value is a 400 `InvalidRequest` naming `param`."""
    if text is None:
        return None
    try:
        return parse_time(text, now=now, durations=durations)
    except ValueError as exc:
        raise InvalidRequest(f"'{param}': {exc}", param=param) from None
