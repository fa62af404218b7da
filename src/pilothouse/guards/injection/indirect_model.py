"""The learned indirect detector: one document score from the rules' evidence, a segment model and the frame.

The indirect rules (`indirect.py`, `patterns.py`) find text that looks addressed to an AI reader; on their
own they cannot tell a live instruction from a quoted one in an article about prompt injection, and they
miss instructions phrased outside their families. This model combines that evidence in a small network
(the *stacker*: standardised inputs, one hidden layer of tanh units, a logistic output; five such networks
from different random starts, averaged), trained on documents written by people
(`training/train_indirect_model.py`):

1. the rules: the highest score of each finding kind (`RULE_KINDS`), so that, for example, a fake delimiter
   weighs more than a soft "in your response" hit;
2. a segment model: a logistic regression over the words, word pairs and character 4-grams of every
   sentence-like segment (`features.segments`), asked "is this segment written to the AI that reads the
   document?"; the document takes its highest and second-highest segment logits (max-pooling: one buried
   sentence is not diluted by the rest of the document);
3. a language-agnostic cue: a word for an AI reader from the lexicon of about 20 languages of `address.py`,
   with a directive word on the same line (the rules skip documents wholly in that language);
4. the frame: how much of the document talks *about* attacks on AI (attack, injection, jailbreak,
   researchers, mitigation, ...), so that a quotation inside an analytic or educational frame weighs less,
   and how long the document is (more segments, more chances of one odd sentence).

The probability is mapped so that the threshold chosen on development data lands on 0.5 (`model.calibrate`).
Features are computed by the functions here at training and at inference, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.guards.injection.address import foreign_request
from pilothouse.guards.injection.features import feature_strings, segments
from pilothouse.guards.injection.model import calibrate
from pilothouse.guards.scanner import Finding

__all__ = [
    "ARTEFACT",
    "FEATURE_NAMES",
    "RULE_KINDS",
    "IndirectModel",
    "document_vector",
    "fold",
    "frame_count",
    "load_indirect_model",
    "segment_spans",
]

ARTEFACT = Path(__file__).with_name("indirect_model.npz")

RULE_KINDS = (
    "addressed_to_ai",
    "foreign_instruction",
    "hidden_instruction",
    "encoded_instruction",
    "instruction_override",
    "prompt_leak",
    "jailbreak_persona",
    "fake_delimiter",
    "encoded_payload",
    "embedded_instruction",
    "unicode",
)
"""Rule evidence, one feature per kind (the highest score of its findings); `unicode` gathers the
character-level tricks (tag smuggling, bidi, invisible text, homoglyphs, encoded text)."""
_UNICODE_KINDS = frozenset(
    {"tag_smuggling", "bidi_override", "invisible_text", "bidi_control", "homoglyph", "encoded_text"}
)

FEATURE_NAMES = (
    *(f"rule_{k}" for k in RULE_KINDS),
    "rule_max",
    "segment_max",
    "segment_second",
    "log_segments",
    "foreign_request",
    "frame",
    "frame_x_rule",
    "frame_x_segment",
)

MAX_SEGMENTS = 200
"""Segments read per document by the segment model (a bound on work for very long documents)."""

_FRAME = re.compile(
    r"\b(?:prompt injections?|injections?|jailbreak\w*|attack(?:s|er|ers|ed)?|adversar\w*|malicious|"
    r"researchers?|vulnerab\w*|mitigat\w*|red[- ]team\w*|exploit\w*|payloads?|threat\w*|owasp|"
    r"defen[cs]es?|classifier|e\.g\.|for example|such as)\b"
)


def frame_count(normalized: str) -> float:
    """log(1 + the number of words of an analytic frame about attacks on AI) in a normalised text."""
    return math.log1p(len(_FRAME.findall(normalized[:20_000])))


def segment_spans(normalized: str) -> list[tuple[int, int]]:
    """The segments the segment model reads: `features.segments` with at least two letters, at most
    `MAX_SEGMENTS` of them."""
    return [(s, e) for s, e in segments(normalized) if sum(c.isalpha() for c in normalized[s:e]) >= 2][:MAX_SEGMENTS]


def _rule_values(findings: Iterable[Finding]) -> list[float]:
    values = dict.fromkeys(RULE_KINDS, 0.0)
    for f in findings:
        kind = "unicode" if f.kind in _UNICODE_KINDS else f.kind
        if kind in values and f.score > values[kind]:
            values[kind] = f.score
    return [values[k] for k in RULE_KINDS]


def fold(text: str) -> str:
    """Lower case and compatibility forms folded, without the homoglyph mapping (Cyrillic stays Cyrillic)."""
    return unicodedata.normalize("NFKC", text[:20_000]).lower()


def document_vector(
    findings: Iterable[Finding], logits: list[float], foreign: float, frame: float
) -> npt.NDArray[np.float64]:
    """The stacker's input (`FEATURE_NAMES`) from the rules' findings, the segment logits, the foreign-language
    cue (`address.foreign_request` of the folded text) and the frame (`frame_count`)."""
    rules = _rule_values(findings)
    ordered = sorted(logits, reverse=True)
    best = ordered[0] if ordered else -10.0
    second = ordered[1] if len(ordered) > 1 else best
    rule_max = max(rules)
    squashed = 1.0 / (1.0 + math.exp(-min(max(best, -30.0), 30.0)))
    return np.array(
        [
            *rules,
            rule_max,
            best,
            second,
            math.log1p(len(logits)),
            foreign,
            frame,
            frame * rule_max,
            frame * squashed,
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True, slots=True)
class Scored:
    """A document's calibrated score (0.5: the operating point) and its most AI-addressed segment."""

    score: float
    span: tuple[int, int]


class IndirectModel:
    """The loaded artefact (`indirect_model.npz`); read-only after construction, so one serves all threads."""

    def __init__(self, path: Path = ARTEFACT) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.meta: dict[str, Any] = json.loads(str(data["meta"]))
            vocabulary = str(data["vocab"]).split("\n")
            self.segment_weights = data["segment_w"].astype(np.float32)
            self.segment_bias = float(data["segment_b"])
            self.stack_mean = data["stack_mean"].astype(np.float64)
            self.stack_scale = data["stack_scale"].astype(np.float64)
            self.stack_hidden = data["stack_w1"].astype(np.float64)
            self.stack_hidden_bias = data["stack_b1"].astype(np.float64)
            self.stack_weights = data["stack_w2"].astype(np.float64)
            self.stack_bias = data["stack_b2"].astype(np.float64)
        if tuple(self.meta["feature_names"]) != FEATURE_NAMES:
            raise ValueError(f"{path.name} was trained with other features than indirect_model.py computes")
        self.index: dict[str, int] = {feature: i for i, feature in enumerate(vocabulary)}
        self.version: str = str(self.meta["version"])
        self.threshold: float = float(self.meta["threshold"])

    def segment_logit(self, normalized_segment: str) -> float:
        index = self.index
        ids = [i for f in feature_strings(normalized_segment) if (i := index.get(f)) is not None]
        if not ids:
            return self.segment_bias
        return self.segment_bias + float(self.segment_weights[ids].sum()) / math.sqrt(len(ids))

    def probability(self, vector: npt.NDArray[np.float64]) -> float:
        """The mean probability of the stacker's members (each: standardise, tanh layer, logistic output)."""
        scaled = (vector - self.stack_mean) / self.stack_scale
        hidden = np.tanh(np.einsum("f,efh->eh", scaled, self.stack_hidden) + self.stack_hidden_bias)
        z = np.clip((hidden * self.stack_weights).sum(axis=1) + self.stack_bias, -40.0, 40.0)
        return float(np.mean(1.0 / (1.0 + np.exp(-z))))

    def score(self, text: str, normalized: str, findings: Iterable[Finding]) -> Scored:
        """The document's score from its text, its normalised form and the rules' findings on it."""
        spans = segment_spans(normalized)
        logits = [self.segment_logit(normalized[s:e]) for s, e in spans]
        vector = document_vector(findings, logits, foreign_request(fold(text)), frame_count(normalized))
        probability = self.probability(vector)
        best = max(range(len(spans)), key=logits.__getitem__) if spans else -1
        span = spans[best] if best >= 0 else (0, len(normalized))
        return Scored(round(calibrate(probability, self.threshold), 6), span)


_model: IndirectModel | None = None
_lock = threading.Lock()


def load_indirect_model() -> IndirectModel:
    """The shipped indirect model, loaded once per process on first use (thread-safe)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = IndirectModel()
    return _model
