"""The embedding models a collection can be created with, by name, and how ingestion and retrieval reach them.

A collection records its model's name; ingestion embeds chunks and retrieval embeds queries with
`embedder_for(collection.embedding_model)`, so both sides always use the same model. Built in, both from the
bundled local all-MiniLM-L6-v2 weights (384 dimensions):
- `all-MiniLM-L6-v2`: the model in float32, the same vectors as sentence-transformers (to ~1e-6);
- `all-MiniLM-L6-v2-int8`: its Linear layers on int8 weights (pilothouse.embeddings.int8_weights), about
  1.8x less CPU per chunk; vectors differ slightly (cosine ~0.994 to fp32), so it is a model of its own.
Others register a factory with `register_embedder` (a plugin, or a test counting calls).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

from pilothouse.vectors.protocol import FloatArray

with suppress(ImportError):
    # ONNX Runtime must be loaded before usearch (the HNSW index): the other order crashes the process
    # (segmentation fault while onnxruntime initialises). Importing it here puts it first for every RAG path.
    import onnxruntime  # noqa: F401

FP32_MODEL = "all-MiniLM-L6-v2"
INT8_MODEL = "all-MiniLM-L6-v2-int8"
DEFAULT_MODEL = INT8_MODEL
"""What a new collection is embedded with unless it names a model: int8, whose retrieval quality on CISI is
within 0.01 nDCG@10 of fp32's (docs/benchmarks.md) for ~1.8x less CPU per chunk. Name FP32_MODEL to keep
sentence-transformers' exact vectors (e.g. to query with vectors computed elsewhere)."""
RAG_BATCH = 4
"""Texts per forward pass: with 100-250-token chunks, small batches keep the attention scores in the core's
cache (4 per pass cost ~1.35x less CPU than 32 on the 2-core development machine, fp32 and int8 alike)."""


class TextEmbedder(Protocol):
    """Texts to unit-length float32 vectors, and the model's token counts (for chunking)."""

    model: str
    dimensions: int
    max_tokens: int
    """The most tokens the model reads of one text (special tokens excluded); chunks stay within it."""

    def embed(self, texts: list[str]) -> FloatArray:
        """(len(texts), dimensions) float32, unit length, in input order."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, special tokens excluded (counts stop at the model's reading limit)."""
        ...


class MiniLMTextEmbedder:
    """all-MiniLM-L6-v2 from `pilothouse.embeddings` (ONNX Runtime, or NumPy)."""

    model = FP32_MODEL
    int8 = False

    def __init__(self) -> None:
        from pilothouse.embeddings import load_minilm

        self._minilm = load_minilm(int8=self.int8)
        self.dimensions = self._minilm.dimensions
        self.max_tokens = self._minilm.max_seq_length - 2

    def embed(self, texts: list[str]) -> FloatArray:
        return self._minilm.embed(texts, batch_size=RAG_BATCH)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [max(0, len(ids) - 2) for ids in self._minilm.tokenize(texts)]


class MiniLMInt8TextEmbedder(MiniLMTextEmbedder):
    """all-MiniLM-L6-v2 with int8 Linear layers, on ONNX Runtime (a model of its own: other vectors)."""

    model = INT8_MODEL
    int8 = True


_factories: dict[str, Callable[[], TextEmbedder]] = {
    FP32_MODEL: MiniLMTextEmbedder,
    INT8_MODEL: MiniLMInt8TextEmbedder,
}
_loaded: dict[str, TextEmbedder] = {}
_lock = threading.Lock()


class UnknownEmbeddingModel(ValueError):
    """No embedder is registered under the name."""


def embedding_models() -> list[str]:
    return sorted(_factories)


def register_embedder(model: str, factory: Callable[[], TextEmbedder]) -> None:
    """Make `model` available to collections (replacing a registration of the same name)."""
    with _lock:
        _factories[model] = factory
        _loaded.pop(model, None)


def embedder_for(model: str) -> TextEmbedder:
    """The process-wide embedder of `model`, loaded on first use."""
    with _lock:
        found = _loaded.get(model)
        if found is None:
            factory = _factories.get(model)
            if factory is None:
                raise UnknownEmbeddingModel(
                    f"unknown embedding model {model!r}: available are {', '.join(sorted(_factories))}"
                )
            found = factory()
            _loaded[model] = found
        return found
