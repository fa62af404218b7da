"""The SDK splits a large request list into parts the estimate API accepts."""

from __future__ import annotations

import json

from pilothouse.costs.estimate import MAX_REQUESTS
from pilothouse.sdk.costs import PART_BYTES, PART_REQUESTS, request_parts


def test_parts_by_count() -> None:
    bodies = [{"messages": [{"role": "user", "content": str(i)}]} for i in range(2 * PART_REQUESTS + 5)]
    parts = list(request_parts(bodies))
    assert [(start, len(part)) for start, part in parts] == [
        (0, PART_REQUESTS),
        (PART_REQUESTS, PART_REQUESTS),
        (2 * PART_REQUESTS, 5),
    ]
    assert [b for _, part in parts for b in part] == bodies
    assert PART_REQUESTS <= MAX_REQUESTS  # every part is accepted by the server


def test_parts_by_size() -> None:
    big = {"messages": [{"role": "user", "content": "x" * (PART_BYTES // 3)}]}
    parts = list(request_parts([big] * 7))
    assert [(start, len(part)) for start, part in parts] == [(0, 2), (2, 2), (4, 2), (6, 1)]
    assert all(sum(len(json.dumps(b, separators=(",", ":"))) for b in part) <= PART_BYTES for _, part in parts)
    huge = {"messages": [{"role": "user", "content": "x" * (PART_BYTES + 1)}]}
    assert [len(p) for _, p in request_parts([huge, huge])] == [1, 1]  # one body over the size still goes alone


def test_no_parts_for_no_requests() -> None:
    assert list(request_parts([])) == []
