"""Choosing a version from a label's traffic splits: weighted, deterministic, sticky per end user."""

from __future__ import annotations

import hashlib
from typing import Any


def choose_version(splits: list[dict[str, Any]], sticky_key: str) -> int:
    """The version `sticky_key` (an end user, or a random per-request key) gets under these `splits`.

    The key hashes to a point in [0, 1); the versions, in ascending order, cover consecutive intervals of
    that range in proportion to their weights. The same key always lands on the same version for the same
    splits, and when the newer version's weight grows, the users it already had keep it.
    """
    if not splits:
        raise ValueError("a label needs at least one split")
    if len(splits) == 1:
        return int(splits[0]["version"])
    ordered = sorted(splits, key=lambda s: int(s["version"]))
    total = float(sum(float(s["weight"]) for s in ordered))
    if total <= 0:
        raise ValueError("split weights must add up to more than 0")
    digest = hashlib.sha256(sticky_key.encode("utf-8")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    edge = 0.0
    for split in ordered:
        edge += float(split["weight"])
        if point < edge:
            return int(split["version"])
    return int(ordered[-1]["version"])
