"""The trained injection model: loading the shipped artefact and scoring with NumPy only.

The artefact (`injection_model.npz`, written by `training/train_injection.py`) holds two logistic
regressions over the same vocabulary of lexical features (`features.py`):
- `direct`: is this prompt an injection or jailbreak attempt? Lexical features of the whole text plus,
  optionally, the MiniLM embedding of its first `embed_tokens` tokens;
- `indirect`: is this segment of a document addressed to the AI reading it? Lexical features of the segment
  plus the dense cues of `cues.py` (address, register change); a document's probability comes from its
  most AI-addressed segment and its length (`SegmentHead.document_probability`).
and the decision thresholds chosen on the development split, with a version string and the training metadata.

Probabilities are mapped to scores so that each head's threshold lands on 0.5 (`calibrate`): a policy with
threshold 0.5 acts at the operating point chosen on the development data, and a higher or lower threshold
trades false positives for detection.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.guards.injection.cues import CUE_NAMES
from pilothouse.guards.injection.features import feature_strings

__all__ = ["ARTEFACT", "Head", "InjectionModel", "SegmentHead", "calibrate", "load_model"]

ARTEFACT = Path(__file__).with_name("injection_model.npz")

FloatArray = npt.NDArray[np.float32]


def calibrate(probability: float, threshold: float) -> float:
    """A probability mapped piecewise-linearly so that `threshold` becomes 0.5 (0 and 1 stay put)."""
    p = min(max(probability, 0.0), 1.0)
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    return 0.5 * p / t if p < t else 0.5 + 0.5 * (p - t) / (1 - t)


def _sigmoid(z: float) -> float:
    # np.exp (not math.exp, which differs in the last bit now and then): the scores stay those the model was
    # tuned with; the clip in Python, not np.clip, which costs more than the rest of the classifier's maths
    return float(1.0 / (1.0 + np.exp(-min(max(z, -40.0), 40.0))))


@dataclass(frozen=True, slots=True)
class Head:
    """One logistic regression: weights over the vocabulary, optional embedding weights, bias, threshold."""

    weights: FloatArray
    bias: float
    threshold: float
    embedding_weights: FloatArray | None = None

    def probability(self, ids: npt.NDArray[np.int64], embedding: FloatArray | None = None) -> float:
        z = self.bias
        if ids.size:
            z += float(self.weights[ids].sum()) / math.sqrt(ids.size)
        if embedding is not None and self.embedding_weights is not None:
            z += float(embedding @ self.embedding_weights)
        return _sigmoid(z)


@dataclass(frozen=True, slots=True)
class SegmentHead:
    """The indirect head: a logistic regression per segment (lexical ids and cue values), and the document
    calibration `doc` = (a, b, c): p(document) = sigmoid(a * max segment logit + b * log(1 + segments) + c)."""

    weights: FloatArray
    cue_weights: FloatArray
    bias: float
    doc: tuple[float, float, float]
    threshold: float

    def logit(self, ids: npt.NDArray[np.int64], cues: npt.NDArray[np.float64]) -> float:
        z = self.bias + float(cues @ self.cue_weights)
        if ids.size:
            z += float(self.weights[ids].sum()) / math.sqrt(ids.size)
        return z

    def document_probability(self, best_logit: float, segments: int) -> float:
        a, b, c = self.doc
        return _sigmoid(a * best_logit + b * float(np.log1p(segments)) + c)


class InjectionModel:
    """The loaded artefact. Read-only after construction, so one instance serves every thread."""

    def __init__(self, path: Path = ARTEFACT) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.meta: dict[str, Any] = json.loads(str(data["meta"]))
            vocabulary = str(data["vocab"]).split("\n")
            direct_emb = data["direct_emb"].astype(np.float32)
            self.direct = Head(
                data["direct_w"].astype(np.float32),
                float(data["direct_b"]),
                float(self.meta["direct_threshold"]),
                direct_emb if direct_emb.size else None,
            )
            a, b, c = (float(v) for v in self.meta["indirect_doc"])
            self.indirect = SegmentHead(
                data["indirect_w"].astype(np.float32),
                data["indirect_cues"].astype(np.float32),
                float(data["indirect_b"]),
                (a, b, c),
                float(self.meta["indirect_threshold"]),
            )
        if tuple(self.meta["cue_names"]) != CUE_NAMES:
            raise ValueError(f"{path.name} was trained with other cues than cues.py computes; retrain it")
        self.index: dict[str, int] = {feature: i for i, feature in enumerate(vocabulary)}
        self.version: str = str(self.meta["version"])
        self.embed_tokens: int = (
            int(self.meta.get("embed_tokens", 0)) if self.direct.embedding_weights is not None else 0
        )

    def ids(self, normalized_text: str) -> npt.NDArray[np.int64]:
        """Vocabulary indices of the features of a normalised text."""
        index = self.index
        found = [index[f] for f in feature_strings(normalized_text) if f in index]
        return np.fromiter(sorted(found), dtype=np.int64, count=len(found))


_model: InjectionModel | None = None
_lock = threading.Lock()


def load_model() -> InjectionModel:
    """The shipped model, loaded once per process on first use (thread-safe)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = InjectionModel()
    return _model
