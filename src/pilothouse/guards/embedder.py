"""The embedding model the guard scanners share: the bundled all-MiniLM-L6-v2, loaded once per process on
first use (`pilothouse.embeddings.load_minilm` keeps one instance per process, the same one the semantic cache
uses), so a policy with several embedding scanners holds one copy of the weights.

Each text is embedded on its own (no padding), so its vector never depends on what else was in the call, and
recent vectors are kept: the toxicity, denied-topics and leakage scanners cut a text into the same sentences,
so a request scanned by all three pays for one pass of the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from pilothouse.embeddings.minilm import EMBEDDING_DIM, FloatArray, load_minilm

CACHE_SIZE = 4096
"""Sentences whose vectors are kept (about 1.5 KiB each)."""

_cache: OrderedDict[str, FloatArray] = OrderedDict()
_lock = threading.Lock()


def embed(texts: list[str]) -> FloatArray:
    """Unit-length vectors, shape (len(texts), 384), the same for a text whatever it is embedded with;
    thread-safe."""
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    missing: dict[str, list[int]] = {}
    with _lock:
        for row, text in enumerate(texts):
            vector = _cache.get(text)
            if vector is None:
                missing.setdefault(text, []).append(row)
            else:
                _cache.move_to_end(text)
                out[row] = vector
    if not missing:
        return out
    model = load_minilm()
    computed = {}
    for text, ids in zip(missing, model.tokenize(list(missing)), strict=True):
        computed[text] = model.embed_ids([ids])[0] if ids else np.zeros(EMBEDDING_DIM, dtype=np.float32)
    with _lock:
        for text, vector in computed.items():
            _cache[text] = vector
            _cache.move_to_end(text)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    for text, rows in missing.items():
        out[rows] = computed[text]
    return out


def cosine_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """Cosine similarities of unit vectors, shape (len(a), len(b))."""
    result: FloatArray = (a @ b.T).astype(np.float32)
    return result


def clear_cache() -> None:
    """Forget the kept vectors (benchmarks measure cold scans this way)."""
    with _lock:
        _cache.clear()
