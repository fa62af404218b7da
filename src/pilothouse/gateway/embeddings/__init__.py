"""Local text embedding models (pure NumPy)."""

from pilothouse.gateway.embeddings.minilm import (
    EMBEDDING_DIM,
    MiniLMEmbedder,
    MiniLMError,
    default_model_dir,
    load_minilm,
)

__all__ = ["EMBEDDING_DIM", "MiniLMEmbedder", "MiniLMError", "default_model_dir", "load_minilm"]
