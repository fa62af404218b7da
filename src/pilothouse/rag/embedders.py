"""The embedding models a collection can be created with, by name, and how ingestion and retrieval reach them.

A collection records its model's name; ingestion embeds chunks and retrieval embeds queries with
`embedder_for(collection.embedding_model)`, so both sides always use the same model. Built in:
`all-MiniLM-L6-v2` (the bundled local model, 384 dimensions). Others register a factory with
`register_embedder` (a plugin, or a test counting calls).
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

DEFAULT_MODEL = "all-MiniLM-L6-v2"


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

    model = DEFAULT_MODEL

    def __init__(self) -> None:
        from pilothouse.embeddings import load_minilm

        self._minilm = load_minilm()
        self.dimensions = self._minilm.dimensions
        self.max_tokens = self._minilm.max_seq_length - 2

    def embed(self, texts: list[str]) -> FloatArray:
        return self._minilm.embed(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [max(0, len(ids) - 2) for ids in self._minilm.tokenize(texts)]


_factories: dict[str, Callable[[], TextEmbedder]] = {DEFAULT_MODEL: MiniLMTextEmbedder}
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
