"""The toxicity classifier: logistic regression over the MiniLM sentence embedding plus the lexical features
of `lexicon.py`, trained by `training/train_toxicity.py`. Its weights ship beside this module (`model.npz`),
its description and training figures in `model.json` (the version a verdict reports)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.embeddings.minilm import EMBEDDING_DIM, FloatArray
from pilothouse.guards.toxicity.lexicon import FEATURES, lexical_features

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "model.npz"
CARD = HERE / "model.json"

FEATURE_COUNT = EMBEDDING_DIM + len(FEATURES)


def feature_matrix(embeddings: FloatArray, texts: list[str]) -> FloatArray:
    """Rows of [embedding, lexical features] for `texts` (embeddings in the same order)."""
    lexical = np.array([lexical_features(t) for t in texts], dtype=np.float32).reshape(len(texts), len(FEATURES))
    result: FloatArray = np.hstack([embeddings.astype(np.float32), lexical])
    return result


@dataclass(frozen=True, slots=True)
class ToxicityModel:
    """Weights and bias of the classifier, with the card it was shipped with."""

    weights: FloatArray
    bias: float
    card: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))

    @property
    def threshold(self) -> float:
        """The decision threshold chosen on the dev side (cross-validated F1)."""
        return float(self.card.get("threshold", 0.5))

    def probabilities(self, features: FloatArray) -> FloatArray:
        """P(toxic) per row of `feature_matrix`."""
        logits = features @ self.weights + self.bias
        result: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)
        return result

    def save(self, weights_path: Path = WEIGHTS, card_path: Path = CARD) -> None:
        np.savez(weights_path, weights=self.weights.astype(np.float32), bias=np.array([self.bias], dtype=np.float32))
        card_path.write_text(json.dumps(self.card, indent=2, sort_keys=True) + "\n", encoding="utf-8")


_loaded: ToxicityModel | None = None
_lock = threading.Lock()


def load_model() -> ToxicityModel:
    """The shipped classifier, read once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            with np.load(WEIGHTS) as data:
                weights = data["weights"].astype(np.float32)
                bias = float(data["bias"][0])
            if weights.shape != (FEATURE_COUNT,):
                raise RuntimeError(f"{WEIGHTS} has {weights.shape[0]} weights; this code expects {FEATURE_COUNT}")
            _loaded = ToxicityModel(weights, bias, json.loads(CARD.read_text(encoding="utf-8")))
        return _loaded
