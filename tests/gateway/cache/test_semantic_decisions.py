"""What a semantic lookup decides and reports (threshold used, best score, the contrast check's decision,
reason and kind), a threshold given per lookup, and `explain` over the same parts. Vectors come from a table,
so the similarities are exact; the contrast check is the cache's own."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache.explain import explain
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import SemanticCache
from pilothouse.vectors import FloatArray

CACHED = "How do I enable dark mode?"
CLOSE = "How can I enable dark mode?"  # a paraphrase at 0.95
FAR = "how do i enable dark mode"  # a paraphrase at 0.85
OPPOSITE = "How do I disable dark mode?"  # 0.95, and the contrast check refuses it
LOW_OPPOSITE = "How do I disable the dark mode?"  # 0.6: only a very low threshold reaches it
LONG = "too long"


def _at(cosine: float) -> FloatArray:
    """A unit vector at `cosine` to the first axis."""
    vector = np.zeros(8, dtype=np.float32)
    vector[0], vector[1] = cosine, math.sqrt(1 - cosine**2)
    return vector


VECTORS = {CACHED: _at(1.0), CLOSE: _at(0.95), FAR: _at(0.85), OPPOSITE: _at(0.95), LOW_OPPOSITE: _at(0.6)}


def table(text: str) -> FloatArray | None:
    return None if text == LONG else VECTORS[text]


async def cache_with(*texts: str, contrast_checks: bool = True) -> tuple[SemanticCache, MemoryCacheStore]:
    """A semantic cache holding an answer for each text (entry key = the text)."""
    store = MemoryCacheStore()
    cache = SemanticCache(
        SemanticCacheSettings(enabled=True, threshold=0.91, contrast_checks=contrast_checks), store, table
    )
    for text in texts:
        await cache.add("part", text, text, VECTORS[text], time.time() + 60)
        await store.set("ns", text, f"answer to {text}".encode(), 60)
    return cache, store


async def test_a_hit_reports_the_threshold_the_score_and_hit() -> None:
    cache, _ = await cache_with(CACHED)
    found = await cache.lookup("ns", "part", CLOSE)
    assert found.value == f"answer to {CACHED}".encode()
    assert found.threshold == 0.91 and found.score == pytest.approx(0.95, abs=1e-5)
    assert found.decision == "hit" and found.refusal is None and found.refused is None
    [candidate] = found.candidates
    assert candidate.verdict is not None and candidate.verdict.ok


async def test_a_refusal_reports_the_checks_reason_and_kind() -> None:
    cache, _ = await cache_with(CACHED)
    found = await cache.lookup("ns", "part", OPPOSITE)
    assert found.value is None and found.decision == "refused"
    assert found.score == pytest.approx(0.95, abs=1e-5)
    refusal = found.refusal
    assert refusal is not None and not refusal.ok
    assert refusal.reason is not None and "disable" in refusal.reason and refusal.kind
    assert found.refused is not None and found.refused[0].startswith("0.950 ")


async def test_below_the_threshold_nothing_is_checked() -> None:
    cache, _ = await cache_with(CACHED)
    found = await cache.lookup("ns", "part", FAR)
    assert found.value is None and found.decision == "below_threshold"
    assert found.score is None and found.candidates == []


async def test_a_lower_threshold_given_per_lookup_lets_a_paraphrase_hit() -> None:
    cache, _ = await cache_with(CACHED)
    found = await cache.lookup("ns", "part", FAR, threshold=0.8)
    assert found.value is not None and found.threshold == 0.8 and found.decision == "hit"
    stricter = await cache.lookup("ns", "part", CLOSE, threshold=0.99)
    assert stricter.value is None and stricter.decision == "below_threshold" and stricter.threshold == 0.99


async def test_a_lower_threshold_never_bypasses_the_contrast_check() -> None:
    cache, _ = await cache_with(CACHED)
    for threshold in (0.5, 0.55, 0.91):
        found = await cache.lookup("ns", "part", OPPOSITE, threshold=threshold)
        assert found.value is None and found.decision == "refused", threshold
    low = await cache.lookup("ns", "part", LOW_OPPOSITE, threshold=0.5)
    assert low.value is None and low.decision == "refused" and low.score == pytest.approx(0.6, abs=1e-5)


async def test_checks_off_and_unembeddable_text_are_not_checked() -> None:
    cache, _ = await cache_with(CACHED, contrast_checks=False)
    found = await cache.lookup("ns", "part", OPPOSITE)
    assert found.value is not None and found.decision == "not_checked"
    assert found.candidates[0].verdict is None and found.refused is None
    too_long = await cache.lookup("ns", "part", LONG)
    assert too_long.vector is None and too_long.decision == "not_checked" and too_long.score is None


async def test_a_refused_candidate_does_not_hide_a_good_one_behind_it() -> None:
    cache, store = await cache_with(OPPOSITE, CACHED)
    found = await cache.lookup("ns", "part", CLOSE)  # OPPOSITE scores 1.0 (its vector is CLOSE's), CACHED 0.95
    assert [round(c.match.score, 3) for c in found.candidates] == [1.0, 0.95]
    assert found.decision == "hit" and found.value == f"answer to {CACHED}".encode()
    assert found.refused is not None and len(found.refused) == 1 and found.refusal is None
    await store.delete("ns", CACHED)  # the good candidate's answer expired: a miss, though the check passed
    gone = await cache.lookup("ns", "part", CLOSE)
    assert gone.value is None and gone.decision == "hit"


# -- explain --------------------------------------------------------------------------------------------------


async def test_explain_says_would_hit_with_the_similarity_and_the_threshold() -> None:
    cache, _ = await cache_with()
    found = await explain(cache, CLOSE, CACHED, threshold=0.91, threshold_source="default")
    assert found.similarity == pytest.approx(0.95, abs=1e-5)
    assert found.would_hit and found.decision == "hit" and found.answer == "would hit"
    assert found.contrast is not None and found.contrast.ok
    assert found.to_dict()["threshold_source"] == "default"


async def test_explain_names_the_refusal_and_a_missed_threshold() -> None:
    cache, _ = await cache_with()
    refused = await explain(cache, OPPOSITE, CACHED, threshold=0.91, threshold_source="default")
    assert not refused.would_hit and refused.decision == "refused"
    assert refused.answer.startswith("would not hit: the contrast check refuses it (") and "disable" in refused.answer

    below = await explain(cache, FAR, CACHED, threshold=0.91, threshold_source="default")
    assert below.decision == "below_threshold" and not below.would_hit
    assert below.answer == "would not hit: similarity 0.8500 is below the threshold 0.91"
    lowered = await explain(cache, FAR, CACHED, threshold=0.8, threshold_source="project")
    assert lowered.would_hit and lowered.threshold_source == "project"

    both = await explain(cache, LOW_OPPOSITE, CACHED, threshold=0.91, threshold_source="default")
    assert both.decision == "below_threshold"
    assert both.answer.startswith("would not hit: similarity 0.6000 is below the threshold 0.91, and the contrast")


async def test_explain_of_text_a_lookup_would_not_embed() -> None:
    cache, _ = await cache_with()
    long = await explain(cache, LONG, CACHED, threshold=0.91, threshold_source="default")
    assert long.similarity is None and not long.would_hit and long.decision == "not_checked"
    assert long.answer == (
        "would not hit: the question is longer than the embedding model's window (not semantically cached)"
    )
    blank = await explain(cache, CACHED, " \n", threshold=0.91, threshold_source="default")
    assert not blank.would_hit and "the cached question is blank" in blank.answer


async def test_explain_with_checks_off() -> None:
    cache, _ = await cache_with(contrast_checks=False)
    found = await explain(cache, OPPOSITE, CACHED, threshold=0.91, threshold_source="default")
    assert found.would_hit and found.contrast is None and found.decision == "not_checked"
    assert found.answer == "would hit (the contrast checks are off)"
