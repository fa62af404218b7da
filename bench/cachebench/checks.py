"""The contrast checks the benchmark compares, behind one call shape: `check(query, cached) -> Decision`.

- baseline: the frozen copy of the check before issue 11 (cachebench/baseline/contrast_v1.py);
- current: whatever `pilothouse.gateway.cache.contrast` provides now, as the semantic cache builds it.

`plugged(cache, check)` puts a check into a `SemanticCache`'s real lookup for the length of a `with` block.
This module is the only place in the bench that knows how the package's check is called
(`SemanticCache.verdict(query, cached)`, returning ok, reason and kind, and `verdict_without_model`, its
non-blocking first try on the event loop).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import Embed, SemanticCache

from .baseline import contrast_v1


@dataclass(frozen=True, slots=True)
class Decision:
    ok: bool
    reason: str | None = None
    kind: str | None = None  # short class of a refusal ("number", "opposites", ...)


Check = Callable[[str, str], Decision]  # (query, cached question)


def _decision(verdict: Any) -> Decision:
    reason = getattr(verdict, "reason", None)
    kind = getattr(verdict, "kind", None)
    if kind is None and reason:  # the baseline's reasons start with their class: "opposites: [...] vs [...]"
        kind = str(reason).split(":", 1)[0]
    return Decision(bool(verdict.ok), reason, kind)


def baseline_check() -> Check:
    """Today's check (before issue 11), features cached per text."""
    features = functools.lru_cache(maxsize=1 << 16)(contrast_v1.features)

    def check(query: str, cached: str) -> Decision:
        return _decision(contrast_v1.compare(features(query), features(cached)))

    return check


def current_check(embed: Embed | None = None) -> Check:
    """The package's check, as the semantic cache calls it (`SemanticCache.verdict`, which lookups use)."""
    cache = SemanticCache(SemanticCacheSettings(enabled=True), MemoryCacheStore(), embed)
    return lambda query, cached: _decision(cache.verdict(query, cached))


@contextmanager
def plugged(cache: SemanticCache, check: Check | None) -> Iterator[SemanticCache]:
    """`cache` looking up with `check` (None: the cache's own) until the block ends: the instance's
    `verdict` and `verdict_without_model`, the two places its lookup calls the check, are replaced."""
    if check is None:
        yield cache
        return
    setattr(cache, "verdict", check)  # noqa: B010 (an instance attribute shadows the method)
    setattr(cache, "verdict_without_model", check)  # noqa: B010 (a plugged check never defers to the model)
    try:
        yield cache
    finally:
        delattr(cache, "verdict")
        delattr(cache, "verdict_without_model")
