"""The Overview filtered by an end user reads the per-user rollups (store/user_rollups.py): a user with more
requests than `SPAN_READ_MAX` still gets cache hits and guard blocks, as long as the range's edges are quiet."""

from __future__ import annotations

import time

import pytest

from tests.ui.conftest import Dashboard
from tests.ui.test_overview import stat
from tests.ui.test_traces import ingest


def _spans(at: float) -> list[dict[str, object]]:
    """A guard span that blocked and a cache span that answered, inside a trace `ingest` starts at `at`."""
    return [
        {
            "kind": "guard",
            "name": "pii",
            "started_at": at + 0.1,
            "ended_at": at + 0.11,
            "attributes": {"pilothouse.guard.decision": "block"},
        },
        {
            "kind": "cache",
            "name": "lookup",
            "started_at": at + 0.2,
            "ended_at": at + 0.21,
            "attributes": {"pilothouse.cache_saved_usd": "0.25"},
        },
    ]


def at_the_days_first_edge() -> float:
    """A time in the partial hour at the start of the last 24 h (read from the rows), for a page asked for within
    20 s: now - 24 h + 20 s, first waiting out the minute after an hour starts (the range would start on the hour,
    with no partial hour) and the 30 s before (the time would be in the next hour)."""
    while not 60 <= time.time() % 3600 <= 3600 - 30:
        time.sleep(1)
    return time.time() - 86_400 + 20


def test_a_busy_users_whole_hours_count_cache_hits_and_guard_blocks(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pilothouse.store.user_activity as user_activity

    now = time.time()
    for hours_ago in (3, 4, 5):  # whole hours of the last day: read from the user rollups, not the rows
        at = now - hours_ago * 3600
        ingest(dash, f"t{hours_ago}", cost="0.5", user="alice", started_at=at, extra=_spans(at))
    ingest(dash, "other", cost="0.5", user="bob", started_at=now - 4 * 3600, extra=_spans(now - 4 * 3600))
    monkeypatch.setattr(user_activity, "SPAN_READ_MAX", 1)  # alice is "busy": 3 requests
    viewer = dash.session("viewer")
    for range_ in ("24h", "7d", "30d"):
        text = viewer.client.get("/", params={"user": "alice", "range": range_}).text
        assert stat(text, "Requests") == "3", range_
        assert stat(text, "Guard blocks") == "3", range_
        assert stat(text, "Cache savings") == "$0.75", range_
        assert "not counted" not in text, range_
    # the partial hour at the range's start is read from the rows: busy there, they are not guessed
    at = at_the_days_first_edge()
    ingest(dash, "edge1", cost="0.5", user="alice", started_at=at, extra=_spans(at))
    ingest(dash, "edge2", cost="0.5", user="alice", started_at=at, extra=_spans(at))
    text = viewer.client.get("/", params={"user": "alice"}).text
    assert stat(text, "Requests") == "5" and stat(text, "Guard blocks") == "-"
    assert "Cache hits and guard blocks are not counted" in text
    assert stat(viewer.client.get("/", params={"user": "alice", "range": "7d"}).text, "Guard blocks") == "5"
