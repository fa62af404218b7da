"""Deterministic splits: each item goes to a split by a hash of (seed, item id), so the same item lands in the
same split in every version and on every machine, and adding items never moves the old ones."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pilothouse.datasets.items import SPLIT_PATTERN, ItemError

__all__ = ["assign_splits", "parse_fractions"]


def parse_fractions(spec: str | Mapping[str, float]) -> dict[str, float]:
    """`"train=0.8,test=0.2"` (or a mapping) -> fractions that sum to 1. ItemError with what is wrong."""
    if isinstance(spec, str):
        pairs: dict[str, float] = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            name, _, value = part.partition("=")
            try:
                pairs[name.strip()] = float(value)
            except ValueError:
                raise ItemError(f"split {part!r}: write NAME=FRACTION, e.g. train=0.8,test=0.2") from None
    else:
        pairs = dict(spec)
    if len(pairs) < 2:
        raise ItemError("give at least two splits, e.g. train=0.8,test=0.2")
    for name, fraction in pairs.items():
        if not re.match(SPLIT_PATTERN, name):
            raise ItemError(f"split name {name!r}: lower-case letters, digits, _ and -, starting with a letter")
        if not 0.0 < fraction < 1.0:
            raise ItemError(f"split {name!r}: the fraction must be between 0 and 1 (got {fraction})")
    total = sum(pairs.values())
    if abs(total - 1.0) > 1e-6:
        raise ItemError(f"the split fractions add up to {total:g}, not 1")
    return pairs


def _unit(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    items: Sequence[dict[str, Any]], fractions: Mapping[str, float], *, seed: int = 0
) -> list[dict[str, Any]]:
    """Copies of `items` with `split` set; splits in the order given take consecutive ranges of [0, 1)."""
    bounds: list[tuple[float, str]] = []
    edge = 0.0
    for name, fraction in fractions.items():
        edge += fraction
        bounds.append((edge, name))
    out = []
    for item in items:
        u = _unit(seed, str(item["id"]))
        name = next((n for b, n in bounds if u < b), bounds[-1][1])
        out.append({**item, "split": name})
    return out
