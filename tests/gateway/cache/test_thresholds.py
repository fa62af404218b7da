"""Per-project thresholds in the cache stage: read from the store (SQLite) once and then every `ttl_s` in the
background, applied to the project's semantic lookups only, and reported on the spans with the contrast
check's decision; a store that cannot be read leaves the configured threshold in force."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from pilothouse.config import CacheSettings, Deployment, ModelEntry, SemanticCacheSettings, Settings
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.thresholds import ThresholdOverrides
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.store.cache_thresholds import clear_threshold, set_threshold
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.vectors import FloatArray
from tests.gateway.cache.test_stage import body, call

CACHED = "How do I enable dark mode?"
PARAPHRASE = "how do i enable dark mode"  # 0.85 to CACHED: below the default 0.91
OPPOSITE = "How do I disable dark mode?"  # 0.7 to CACHED: refused at any threshold that reaches it


def _at(cosine: float) -> FloatArray:
    vector = np.zeros(8, dtype=np.float32)
    vector[0], vector[1] = cosine, math.sqrt(1 - cosine**2)
    return vector


VECTORS = {CACHED: _at(1.0), PARAPHRASE: _at(0.85), OPPOSITE: _at(0.7)}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield store
    store.dispose()


def project(db: Store, name: str, threshold: float | None = None) -> str:
    with db.begin() as conn:
        project_id = create_project(conn, name).id
        if threshold is not None:
            set_threshold(conn, project_id=project_id, threshold=threshold, actor=None)
    return project_id


def make(db: Store, ttl_s: float = 60.0) -> tuple[Gateway, ResponseCache]:
    settings = Settings(
        include_default_models=False,
        models=[
            ModelEntry(
                name="fake-chat",
                deployments=[Deployment(provider="fake", model="fake-1", input_price_per_mtok=Decimal("2"))],
            )
        ],
        cache=CacheSettings(enabled=True, semantic=SemanticCacheSettings(enabled=True, threshold=0.91)),
    )
    cache = ResponseCache(settings, MemoryCacheStore(), VECTORS.get, ThresholdOverrides(db, ttl_s))
    return Gateway(settings, ProviderPool(settings), default_price_book()), cache


async def test_a_projects_threshold_applies_to_its_lookups_only(db: Store) -> None:
    lowered, plain = project(db, "lowered", 0.8), project(db, "plain")
    gw, cache = make(db)
    for project_id in (lowered, plain):
        await call(gw, cache, body(CACHED), project=project_id)

    hit = await call(gw, cache, body(PARAPHRASE), project=lowered)
    assert hit.kinds == ["cache"]
    attrs = hit.trace.spans[0].attributes
    assert attrs["pilothouse.cache.semantic.threshold"] == 0.8
    assert attrs["pilothouse.cache.semantic.score"] == pytest.approx(0.85, abs=1e-5)
    assert attrs["pilothouse.cache.contrast.decision"] == "hit"
    assert "pilothouse.cache.contrast.reason" not in attrs

    miss = await call(gw, cache, body(PARAPHRASE), project=plain)
    assert miss.kinds == ["llm"]
    attrs = miss.trace.spans[0].attributes
    assert attrs["pilothouse.cache.semantic.threshold"] == 0.91
    assert attrs["pilothouse.cache.contrast.decision"] == "below_threshold"
    assert "pilothouse.cache.semantic.score" not in attrs


async def test_a_lower_threshold_still_puts_candidates_to_the_contrast_check(db: Store) -> None:
    lowest = project(db, "lowest", 0.5)
    gw, cache = make(db)
    await call(gw, cache, body(CACHED), project=lowest)
    refused = await call(gw, cache, body(OPPOSITE), project=lowest)
    assert refused.kinds == ["llm"]
    attrs = refused.trace.spans[0].attributes
    assert attrs["pilothouse.cache.semantic.threshold"] == 0.5
    assert attrs["pilothouse.cache.semantic.score"] == pytest.approx(0.7, abs=1e-5)
    assert attrs["pilothouse.cache.contrast.decision"] == "refused"
    assert "disable" in attrs["pilothouse.cache.contrast.reason"] and attrs["pilothouse.cache.contrast.kind"]
    assert attrs["pilothouse.cache.semantic_refused"][0].startswith("0.700 ")


async def test_an_exact_hit_is_not_checked(db: Store) -> None:
    project_id = project(db, "exact")
    gw, cache = make(db)
    await call(gw, cache, body(CACHED), project=project_id)
    again = await call(gw, cache, body(CACHED), project=project_id)
    attrs = again.trace.spans[0].attributes
    assert again.kinds == ["cache"] and attrs["pilothouse.cache.kind"] == "exact"
    assert attrs["pilothouse.cache.contrast.decision"] == "not_checked"
    assert attrs["pilothouse.cache.semantic.threshold"] == 0.91


async def test_a_change_in_the_store_is_seen_within_the_ttl(db: Store) -> None:
    project_id = project(db, "moving", 0.8)
    overrides = ThresholdOverrides(db, ttl_s=0.05)
    assert await overrides.get(project_id) == 0.8  # the first read waits for the store
    with db.begin() as conn:
        set_threshold(conn, project_id=project_id, threshold=0.97, actor=None)
    assert await overrides.get(project_id) == 0.8  # still the one read, until the ttl passes
    for _ in range(100):
        await asyncio.sleep(0.02)
        if await overrides.get(project_id) == 0.97:
            break
    assert await overrides.get(project_id) == 0.97
    with db.begin() as conn:
        clear_threshold(conn, project_id)
    assert overrides.reload() == {}  # what the API calls after a change: at once
    assert await overrides.get(project_id) is None


async def test_a_store_that_cannot_be_read_leaves_the_default(
    db: Store, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    project_id = project(db, "unreadable", 0.8)
    gw, cache = make(db)
    db.dispose()
    (tmp_path / "db.sqlite").unlink()
    (tmp_path / "db.sqlite").mkdir()  # a directory where the database was: every read fails
    with caplog.at_level(logging.WARNING, logger="pilothouse.cache"):
        await call(gw, cache, body(CACHED), project=project_id)
        missed = await call(gw, cache, body(PARAPHRASE), project=project_id)
    assert "could not read the cache thresholds of projects" in caplog.text
    assert missed.kinds == ["llm"]
    assert missed.trace.spans[0].attributes["pilothouse.cache.semantic.threshold"] == 0.91
    assert "pilothouse.cache.lookup_error" not in missed.trace.spans[0].attributes


async def test_concurrent_first_lookups_share_one_read(db: Store) -> None:
    project_id = project(db, "busy", 0.85)

    class Counting(ThresholdOverrides):
        reads = 0

        def reload(self) -> dict[str, float]:
            Counting.reads += 1
            return super().reload()

    overrides = Counting(db, ttl_s=60)
    found = await asyncio.gather(*(overrides.get(project_id) for _ in range(20)))
    assert found == [0.85] * 20 and Counting.reads == 1
    await overrides.aclose()
