"""The shipped word-vector table of the contrast check: what it holds, that it agrees with the model, that a
table built for something else is ignored, and that the check then asks the model for no word it holds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pilothouse.gateway.cache.contrast import ContrastChecker
from pilothouse.gateway.cache.contrast_vectors import FloatArray, WordVectors, minilm_word_embedder
from pilothouse.gateway.cache.contrast_wordtable import build, load_word_table, table_words


def test_the_shipped_table_holds_the_vocabulary_and_agrees_with_the_model() -> None:
    table = load_word_table()
    assert table is not None and len(table) == len(table_words()) > 15000
    words = ["kettle", "password", "cheap", "expensive", "laptop"]
    model = minilm_word_embedder()(words)
    for word, vector in zip(words, model, strict=True):
        stored = table.get(word)
        assert stored is not None
        assert float(stored @ (vector / np.linalg.norm(vector))) > 0.995
    assert table.get("the") is None  # closed-class words are never compared by vector
    assert table.get("qwzx") is None


def _fake(words: Sequence[str]) -> FloatArray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((len(words), 8)).astype(np.float32)


def test_a_table_for_another_vocabulary_or_format_is_ignored(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, **build(["alpha", "beta"], _fake))  # type: ignore[arg-type]
    assert load_word_table(foreign) is None
    old = tmp_path / "old.npz"
    arrays = build(table_words(), _fake)
    arrays["format_version"] = np.asarray(0)
    np.savez(old, **arrays)  # type: ignore[arg-type]
    assert load_word_table(old) is None
    assert load_word_table(tmp_path / "missing.npz") is None
    good = tmp_path / "good.npz"
    np.savez(good, **build(table_words(), _fake))  # type: ignore[arg-type]
    loaded = load_word_table(good)
    assert loaded is not None and loaded.get("kettle") is not None


def test_words_in_the_table_never_reach_the_model() -> None:
    calls: list[list[str]] = []
    embed = minilm_word_embedder()

    def counting(words: Sequence[str]) -> FloatArray:
        calls.append(list(words))
        return embed(words)

    table = load_word_table()
    assert table is not None
    checker = ContrastChecker(counting, word_table=table)
    assert not checker.compare("How do I descale a kettle?", "How do I descale a machine?").ok
    assert checker.compare("Where can I buy a cheap couch?", "Where can I buy a cheap sofa?").ok  # by vector
    assert calls == [] and checker.vectors.embedded == 0
    checker.compare("How do I configure grafanax?", "How do I configure kibanax?")  # not English words
    assert calls and checker.vectors.embedded == len(calls[0])


def test_without_a_table_every_word_is_embedded_once() -> None:
    calls: list[list[str]] = []

    def counting(words: Sequence[str]) -> FloatArray:
        calls.append(list(words))
        return _fake(words)

    vectors = WordVectors(counting, table=None)
    vectors.vectors(["kettle", "toaster"])
    vectors.vectors(["kettle", "toaster"])
    assert calls == [["kettle", "toaster"]]


@pytest.mark.parametrize("word", ["couch", "sofa"])
def test_table_vectors_are_unit_length(word: str) -> None:
    table = load_word_table()
    assert table is not None
    vector = table.get(word)
    assert vector is not None and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_the_check_without_the_model_defers_only_unknown_words() -> None:
    calls: list[list[str]] = []

    def counting(words: Sequence[str]) -> FloatArray:
        calls.append(list(words))
        return _fake(words)

    table = load_word_table()
    assert table is not None
    checker = ContrastChecker(counting, word_table=table)
    verdict = checker.compare_without_model("How do I descale a kettle?", "How do I descale a machine?")
    assert verdict is not None and verdict.kind == "unaligned"
    assert checker.compare_without_model("How do I configure grafanax?", "How do I configure kibanax?") is None
    assert calls == []  # deferred, not embedded
    assert checker.compare("How do I configure grafanax?", "How do I configure kibanax?").kind == "unaligned"
    assert calls == [["grafanax", "kibanax"]]
    again = checker.compare_without_model("How do I configure grafanax?", "How do I configure kibanax?")
    assert again is not None and not again.ok  # now in the LRU
