"""Time windows for reports: `7d`, `24h`, `30m` before now, epoch seconds, or ISO 8601."""

from __future__ import annotations

import datetime as dt
import re
import time

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_when(text: str, *, now: float | None = None) -> float:
    """Epoch seconds for `text`: a duration before `now` (`90s`, `30m`, `24h`, `7d`, `2w`), epoch seconds,
    or ISO 8601 (a time without a zone is UTC). ValueError says what is accepted."""
    match = _DURATION.match(text)
    if match:
        return (time.time() if now is None else now) - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected a duration before now (7d, 24h, 30m), epoch seconds or ISO 8601, got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
