"""Word vectors for the contrast check's synonym test, cached in a bounded LRU.

Single words are embedded with the bundled all-MiniLM-L6-v2 (as one-word sentences). Most come precomputed
from the shipped table (contrast_wordtable); the others are embedded in one batch per comparison, and kept
while they stay among the `maxsize` most recently used. The model's word-piece vocabulary doubles as a list
of known English words (a word in it is spelt right, so it is never taken for a typo of another).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
EmbedWords = Callable[[Sequence[str]], FloatArray]  # words -> (n, d) unit vectors


def minilm_word_embedder() -> EmbedWords:
    """Embeds words with the process-wide MiniLM (loaded on first use)."""

    def embed(words: Sequence[str]) -> FloatArray:
        from pilothouse.embeddings.minilm import load_minilm

        return load_minilm().embed(list(words))

    return embed


@lru_cache(maxsize=1)
def minilm_vocabulary() -> frozenset[str]:
    """Whole words (not word pieces) of the MiniLM tokenizer's vocabulary; empty when the model is missing."""
    try:
        from pilothouse.embeddings.minilm import MiniLMError, default_model_dir

        path = default_model_dir() / "vocab.txt"
        lines = path.read_text(encoding="utf-8").split()
    except (ImportError, OSError, MiniLMError):
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.islower() and len(w) >= 2)


class WordSource(Protocol):
    """Where the alignment gets word vectors: `vectors(words)` -> {word: unit vector} for every word."""

    def vectors(self, words: Sequence[str]) -> dict[str, FloatArray]: ...


class NeedsModel(Exception):
    """A word is neither in the table nor in the LRU, and the caller asked not to run the model."""


class WordVectors:
    """Cosine similarity of words, with their vectors in an LRU of `maxsize` words (thread-safe).

    `table`: precomputed vectors looked up before the model (contrast_wordtable: the model's own vocabulary,
    shipped with the package); the LRU then holds only the words the model had to embed."""

    def __init__(
        self, embed: EmbedWords, maxsize: int = 8192, table: Callable[[str], FloatArray | None] | None = None
    ) -> None:
        self._embed = embed
        self._table = table
        self._maxsize = maxsize
        self.embedded = 0  # words the model was asked for (not found in the table or the LRU)
        self._cache: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def without_model(self) -> WordSource:
        """The same vectors, raising NeedsModel instead of calling the model for a word it lacks."""
        return _WithoutModel(self)

    def vectors(self, words: Sequence[str], *, embed: bool = True) -> dict[str, FloatArray]:
        """Vectors of `words`: from the table or the LRU, the rest embedded in one batch (`embed` False:
        NeedsModel is raised instead)."""
        found: dict[str, FloatArray] = {}
        if self._table is not None:
            for w in words:
                t = self._table(w)
                if t is not None:
                    found[w] = t
        with self._lock:
            for w in words:
                v = None if w in found else self._cache.get(w)
                if v is not None:
                    self._cache.move_to_end(w)
                    found[w] = v
        missing = [w for w in dict.fromkeys(words) if w not in found]
        if missing and not embed:
            raise NeedsModel(", ".join(missing))
        if missing:
            self.embedded += len(missing)
            embedded = np.asarray(self._embed(missing), dtype=np.float32)
            norms = np.linalg.norm(embedded, axis=1, keepdims=True)
            embedded = (embedded / np.where(norms == 0, 1, norms)).astype(np.float32)
            with self._lock:
                for w, v in zip(missing, embedded, strict=True):
                    found[w] = v
                    self._cache[w] = v
                while len(self._cache) > self._maxsize:
                    self._cache.popitem(last=False)
        return found


class _WithoutModel:
    def __init__(self, words: WordVectors) -> None:
        self._words = words

    def vectors(self, words: Sequence[str]) -> dict[str, FloatArray]:
        return self._words.vectors(words, embed=False)
