"""What the MiniLM embedder and its encoders (NumPy, ONNX Runtime) share: array types, the model's shape
and the encoder interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The parts of the Hugging Face `config.json` the encoder needs."""

    hidden_size: int
    num_heads: int
    num_layers: int
    eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> BertConfig:
        return cls(
            hidden_size=int(config["hidden_size"]),
            num_heads=int(config["num_attention_heads"]),
            num_layers=int(config["num_hidden_layers"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
        )


class Encoder(Protocol):
    """Token ids to unit-length sentence vectors; safe to call from several threads at once."""

    name: str  # "onnxruntime" or "numpy"

    def encode(self, input_ids: IntArray, mask: IntArray | None) -> FloatArray:
        """(batch, seq) int64 ids, right-padded where `mask` is 0 (None: no padding) -> (batch, hidden)."""
        ...
