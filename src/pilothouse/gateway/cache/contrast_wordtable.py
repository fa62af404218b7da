"""Precomputed MiniLM word vectors for the contrast check, so that a lookup rarely waits for the model.

The synonym test of the contrast check (contrast_align) compares single words by the cosine of their MiniLM
embeddings (each word embedded as a one-word sentence). Embedding a word the process has not seen costs one
model call (~3 ms, mostly fixed overhead), on the lookup's critical path. This module ships those vectors
for every whole word of the model's own vocabulary (~21,000 words, closed-class words left out), built
by `build()` with the same embedder and stored as int8 (each row scaled by its largest component: cosine
error < 0.005), in `contrast_word_vectors.npz` beside this file. Words outside it (rare words, word pieces,
misspellings) still go to the model, in one batch per comparison.

The artefact is versioned: it records the model it was built with, the format version and the vocabulary's
hash; a table that does not match the installed model's vocabulary is ignored (the check then embeds every
word, as before). Rebuild it after changing the model or the word selection (`write()`):

    python bench/cachebench/build_word_table.py
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pilothouse.gateway.cache.contrast_vectors import EmbedWords, FloatArray, minilm_vocabulary, minilm_word_embedder

__all__ = ["TABLE_PATH", "WordTable", "build", "load_word_table", "table_words", "write"]

log = logging.getLogger("pilothouse.gateway.cache")

TABLE_PATH = Path(__file__).with_name("contrast_word_vectors.npz")
FORMAT_VERSION = 1
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def _vocabulary_hash(words: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()[:16]


def table_words(vocabulary: frozenset[str] | None = None) -> list[str]:
    """The words the table holds: whole words of the model's vocabulary, three letters or more, that are
    not closed-class words (those are compared exactly, never by vector), in sorted order."""
    from pilothouse.gateway.cache.contrast_words import word_class

    vocabulary = minilm_vocabulary() if vocabulary is None else vocabulary
    return sorted(w for w in vocabulary if len(w) >= 3 and word_class(w) is None)


@dataclass(frozen=True, slots=True)
class WordTable:
    """Unit word vectors by word, as int8 codes (each row scaled so its largest component is 127)."""

    index: dict[str, int]
    codes: npt.NDArray[np.int8]  # (n, d)

    def __len__(self) -> int:
        return len(self.index)

    def get(self, word: str) -> FloatArray | None:
        """The unit vector of `word`, or None when the table does not hold it."""
        row = self.index.get(word)
        if row is None:
            return None
        vector: FloatArray = self.codes[row].astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / np.float32(norm) if norm else vector


def build(words: Sequence[str], embed: EmbedWords, batch: int = 256) -> dict[str, npt.NDArray[np.generic]]:
    """The arrays of a table for `words`: each embedded as a one-word sentence, normalised, quantised."""
    rows = [np.asarray(embed(list(words[i : i + batch])), dtype=np.float32) for i in range(0, len(words), batch)]
    vectors = np.concatenate(rows) if rows else np.zeros((0, 384), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scales = np.maximum(np.abs(vectors).max(axis=1, keepdims=True), 1e-12) / 127.0
    codes = np.round(vectors / scales).astype(np.int8)  # a row's scale cancels when it is normalised again
    return {
        "words": np.asarray(words, dtype=np.str_),
        "codes": codes,
        "format_version": np.asarray(FORMAT_VERSION),
        "model": np.asarray(MODEL_NAME),
        "vocabulary_hash": np.asarray(_vocabulary_hash(words)),
    }


@lru_cache(maxsize=4)
def load_word_table(path: Path = TABLE_PATH) -> WordTable | None:
    """The shipped table, or None when it is missing, of another format, or built for another vocabulary."""
    try:
        with np.load(path, allow_pickle=False) as data:
            words = [str(w) for w in data["words"]]
            if int(data["format_version"]) != FORMAT_VERSION:
                log.warning("contrast word table %s: format %s, expected %s", path, data["format_version"], 1)
                return None
            expected = table_words()
            if expected and str(data["vocabulary_hash"]) != _vocabulary_hash(expected):
                log.warning("contrast word table %s was built for another vocabulary: ignored", path)
                return None
            codes = np.asarray(data["codes"], dtype=np.int8)
    except (OSError, KeyError, ValueError) as exc:
        log.info("no contrast word table at %s (%s): words are embedded at lookup", path, exc)
        return None
    return WordTable({w: i for i, w in enumerate(words)}, codes)


def write(path: Path = TABLE_PATH) -> int:
    """Build the table of `table_words()` with the bundled MiniLM and save it at `path`; the word count."""
    words = table_words()
    if not words:
        raise RuntimeError("the MiniLM vocabulary was not found: is the model package installed?")
    np.savez_compressed(path, **build(words, minilm_word_embedder()))  # type: ignore[arg-type]
    load_word_table.cache_clear()
    return len(words)
