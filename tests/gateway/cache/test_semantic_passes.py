"""The semantic lookup searches in two passes below FIRST_PASS: first only the close matches (few rows for the
index's pre-filter), then, when none of them passed, down to the threshold. The answer is the one a single
search would give: candidates are checked best first either way."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import FIRST_PASS, SemanticCache
from pilothouse.gateway.cache.store import VectorMatch
from pilothouse.vectors import FloatArray

QUERY = "How do I enable dark mode?"
CLOSE_REFUSED = "How do I disable dark mode?"
LOW_PARAPHRASE = "how can i enable dark mode"
CLOSE_PARAPHRASE = "How can I enable dark mode?"


def _at(cosine: float) -> FloatArray:
    vector = np.zeros(8, dtype=np.float32)
    vector[0], vector[1] = cosine, math.sqrt(1 - cosine**2)
    return vector


VECTORS = {QUERY: _at(1.0), CLOSE_REFUSED: _at(0.95), LOW_PARAPHRASE: _at(0.7), CLOSE_PARAPHRASE: _at(0.9)}


class CountingStore(MemoryCacheStore):
    def __init__(self) -> None:
        super().__init__()
        self.searches: list[float] = []

    def search_vectors(self, partition: str, vector: FloatArray, **kwargs: Any) -> list[VectorMatch]:
        self.searches.append(float(kwargs["min_score"]))
        return super().search_vectors(partition, vector, **kwargs)


async def cache_with(*texts: str) -> tuple[SemanticCache, CountingStore]:
    store = CountingStore()
    cache = SemanticCache(SemanticCacheSettings(enabled=True, threshold=0.6), store, VECTORS.__getitem__)
    for text in texts:
        await cache.add("part", text, text, VECTORS[text], time.time() + 60)
        await store.set("ns", text, text.encode(), 60)
    return cache, store


async def test_a_close_match_that_passes_needs_one_narrow_search() -> None:
    cache, store = await cache_with(CLOSE_PARAPHRASE, LOW_PARAPHRASE)
    found = await cache.lookup("ns", "part", QUERY)
    assert found.value == CLOSE_PARAPHRASE.encode()
    assert store.searches == [FIRST_PASS]


async def test_a_low_match_is_found_by_the_second_pass() -> None:
    cache, store = await cache_with(LOW_PARAPHRASE)
    found = await cache.lookup("ns", "part", QUERY)
    assert found.value == LOW_PARAPHRASE.encode() and found.decision == "hit"
    assert store.searches == [FIRST_PASS, 0.6]


async def test_a_refused_close_match_is_followed_by_the_low_one() -> None:
    cache, store = await cache_with(CLOSE_REFUSED, LOW_PARAPHRASE)
    found = await cache.lookup("ns", "part", QUERY)
    assert found.value == LOW_PARAPHRASE.encode()
    assert [c.match.text for c in found.candidates] == [CLOSE_REFUSED, LOW_PARAPHRASE]
    assert [c.verdict is not None and c.verdict.ok for c in found.candidates] == [False, True]
    assert store.searches == [FIRST_PASS, 0.6]


async def test_a_threshold_above_the_first_pass_searches_once() -> None:
    cache, store = await cache_with(CLOSE_REFUSED)
    found = await cache.lookup("ns", "part", QUERY, threshold=0.9)
    assert found.decision == "refused" and store.searches == [0.9]


async def test_nothing_close_or_low_is_below_threshold() -> None:
    cache, store = await cache_with(LOW_PARAPHRASE)
    found = await cache.lookup("ns", "part", "How do I enable dark mode?", threshold=0.75)
    assert found.decision == "below_threshold" and store.searches == [FIRST_PASS, 0.75]
