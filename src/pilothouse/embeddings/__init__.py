"""Local text embedding models: all-MiniLM-L6-v2 on ONNX Runtime, or in pure NumPy."""

from pilothouse.embeddings.minilm import (
    EMBEDDING_DIM,
    MiniLMEmbedder,
    MiniLMError,
    default_model_dir,
    load_minilm,
)

__all__ = ["EMBEDDING_DIM", "MiniLMEmbedder", "MiniLMError", "default_model_dir", "load_minilm"]
