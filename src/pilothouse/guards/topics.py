"""The `denied_topics` scanner: text about a subject the operator has ruled out (legal advice, a competitor's
products, medical dosing), by embedding similarity to the operator's description and examples of each topic.

Each topic's description and examples are embedded once (on first scan). The text is embedded whole and in
windows of a few sentences (`guards/sentences.py`), so one off-topic paragraph inside a long answer is still
seen; a topic's similarity is the highest cosine between any of those pieces and any of its vectors. A piece
at or above `threshold` is a finding naming the topic. Similarity is not understanding: a text that argues
against a topic, or mentions it in passing, can score close to one that is about it; tune `threshold` with
your own examples (`pilothouse policy test`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pilothouse.embeddings.minilm import FloatArray
from pilothouse.guards.embedder import cosine_matrix, embed
from pilothouse.guards.scanner import Finding, ScanContext, Verdict, clean_verdict
from pilothouse.guards.sentences import Span, scan_pieces

DEFAULT_THRESHOLD = 0.40
"""Cosine similarity (all-MiniLM-L6-v2) from which a piece counts as on a topic; chosen on the self-written
set of `bench/guard_content_bench.py`."""
WHOLE_TEXT_CHARS = 2000
"""Texts up to this long are also compared whole (longer ones would be cut at the model's 256 tokens)."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A denied topic: a name (what findings report), a description and optional example texts."""

    name: str
    description: str
    examples: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Topic:
        if not isinstance(raw, Mapping):
            raise ValueError(f"a topic is a mapping with name, description and examples, not {type(raw).__name__}")
        unknown = set(raw) - {"name", "description", "examples"}
        if unknown:
            raise ValueError(f"unknown topic field(s): {', '.join(sorted(map(str, unknown)))}")
        name, description = raw.get("name"), raw.get("description")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a topic needs a non-empty `name`")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(f"topic {name!r} needs a non-empty `description`")
        examples = raw.get("examples", [])
        if not isinstance(examples, Sequence) or isinstance(examples, str):
            raise ValueError(f"topic {name!r}: `examples` is a list of strings")
        if not all(isinstance(e, str) and e.strip() for e in examples):
            raise ValueError(f"topic {name!r}: every example is a non-empty string")
        return cls(name.strip(), description.strip(), tuple(e.strip() for e in examples))


class DeniedTopicsScanner:
    """Options: `topics` (a list of {name, description, examples}), `threshold` (cosine, default 0.40).
    Without topics every text passes."""

    name: ClassVar[str] = "denied_topics"
    redacts: ClassVar[bool] = False
    conformance_options: ClassVar[dict[str, Any]] = {
        "topics": [
            {
                "name": "medical_dosing",
                "description": "advice on medication doses, prescriptions and drug quantities",
                "examples": ["How many milligrams of ibuprofen can I take?"],
            }
        ]
    }

    def __init__(self, *, topics: Sequence[Any] = (), threshold: float = DEFAULT_THRESHOLD) -> None:
        if isinstance(topics, str | bytes) or not isinstance(topics, Sequence):
            raise ValueError("`topics` is a list of {name, description, examples}")
        self.topics = tuple(Topic.parse(t) for t in topics)
        names = [t.name for t in self.topics]
        if len(set(names)) != len(names):
            raise ValueError("topic names must be unique")
        if not 0.0 < float(threshold) <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = float(threshold)
        self._vectors: FloatArray | None = None
        self._owner: list[int] = []  # topic index of each row of _vectors
        self._lock = threading.Lock()

    def _topic_vectors(self) -> tuple[FloatArray, np.ndarray]:
        with self._lock:
            if self._vectors is None:
                texts: list[str] = []
                for index, topic in enumerate(self.topics):
                    for text in (topic.description, *topic.examples):
                        texts.append(text)
                        self._owner.append(index)
                self._vectors = embed(texts)
            return self._vectors, np.array(self._owner)

    def similarities(self, text: str) -> tuple[list[Span], FloatArray]:
        """The pieces of `text` that were compared (the whole text first when it has several windows) and their
        best similarity per topic, shape (pieces, topics)."""
        pieces = scan_pieces(text)
        if len(pieces) > 1 and pieces[-1].end - pieces[0].start <= WHOLE_TEXT_CHARS:
            pieces = [Span(pieces[0].start, pieces[-1].end, text[pieces[0].start : pieces[-1].end]), *pieces]
        if not pieces or not self.topics:
            return pieces, np.zeros((len(pieces), len(self.topics)), dtype=np.float32)
        vectors, owner = self._topic_vectors()
        cosines = cosine_matrix(embed([p.text for p in pieces]), vectors)
        best = np.stack([cosines[:, owner == i].max(axis=1) for i in range(len(self.topics))], axis=1)
        result: FloatArray = np.clip(best, 0.0, 1.0).round(6).astype(np.float32)
        return pieces, result

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        pieces, best = self.similarities(text)
        if best.size == 0:
            return clean_verdict(self.name, text, redacts=False)
        findings = []
        for t, topic in enumerate(self.topics):
            column = best[:, t]
            row = int(column.argmax())
            similarity = float(column[row])
            if similarity >= self.threshold:
                piece = pieces[row]
                findings.append(
                    Finding(
                        topic.name, piece.start, piece.end, similarity, f"similarity {similarity:.2f} to {topic.name}"
                    )
                )
        return Verdict(scanner=self.name, score=float(best.max()), findings=tuple(findings))
