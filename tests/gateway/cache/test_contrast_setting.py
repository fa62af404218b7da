"""`cache.semantic.contrast_checks`: what it switches, and its old name `guards` still read with a warning."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from pilothouse.config import ConfigError, SemanticCacheSettings, load_settings
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import SemanticCache
from pilothouse.vectors import FloatArray

SAME = np.ones(8, dtype=np.float32) / np.sqrt(8)


def same_vector(text: str) -> FloatArray:
    return SAME  # every text means the same to this embedder: only the contrast checks tell them apart


async def lookup_opposite(settings: SemanticCacheSettings) -> tuple[bool, list[str] | None]:
    store = MemoryCacheStore()
    cache = SemanticCache(settings, store, same_vector)
    await cache.add("part", "k1", "How do I enable dark mode?", SAME, time.time() + 60)
    await store.set("ns", "k1", b"answer", 60)
    found = await cache.lookup("ns", "part", "How do I disable dark mode?")
    await store.aclose()
    return found.value is not None, found.refused


async def test_contrast_checks_refuse_an_opposite_and_can_be_switched_off() -> None:
    hit, refused = await lookup_opposite(SemanticCacheSettings(enabled=True))
    assert not hit and refused is not None and "opposites" in refused[0]
    hit, refused = await lookup_opposite(SemanticCacheSettings(enabled=True, contrast_checks=False))
    assert hit and refused is None


def write_config(tmp_path: Path, semantic: str) -> Path:
    path = tmp_path / "pilothouse.toml"
    path.write_text(f"[cache.semantic]\nenabled = true\n{semantic}\n", encoding="utf-8")
    return path


def test_contrast_checks_key(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "contrast_checks = false"))
    assert settings.cache.semantic.contrast_checks is False
    assert load_settings(write_config(tmp_path, "")).cache.semantic.contrast_checks is True


def test_old_guards_key_is_read_with_a_deprecation_warning(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning, match=r"cache\.semantic\.guards is deprecated.*cache\.semantic\.contrast_checks"):
        settings = load_settings(write_config(tmp_path, "guards = false"))
    assert settings.cache.semantic.contrast_checks is False


def test_old_and_new_key_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give contrast_checks only; guards is its old name"):
        load_settings(write_config(tmp_path, "guards = false\ncontrast_checks = true"))
