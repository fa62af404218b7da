"""Scanner `injection_classifier`: the learned injection and jailbreak classifier (`model.py`), offline on CPU.

Direct mode (prompts): one probability for the whole text from lexical features of its normalised form and,
when the shipped model uses it, the MiniLM embedding of its first `embed_tokens` tokens (64: a 512-token
input costs the same as a short one; the lexical features read the whole text). The finding spans the text.

Indirect mode (documents, tool results): the indirect head alone (the direct head learned prompts, and on
documents written in the imperative for people it raised false positives), which scores every segment of the
document for "addressed to the AI reading it" from its words and its cues (`cues.py`: address, AI
references, talk about the response, tools, links and secrets, and how the segment fits the rest of the
document); the document's score comes from its most AI-addressed segment, reported with its span
(`embedded_instruction`).

Scores are calibrated so that 0.5 is the threshold chosen on the development data; findings are reported
from 0.5 up. Every finding's `detail` names the model version.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from pilothouse.guards.injection.cues import segment_cues
from pilothouse.guards.injection.model import FloatArray, InjectionModel, calibrate, load_model
from pilothouse.guards.injection.normalize import Normalized, normalize
from pilothouse.guards.scanner import Finding, ScanContext, Verdict

__all__ = ["InjectionClassifier", "embed_head"]

_EMBED_CHARS = 2_000
"""Only this much of the text is tokenised for the embedding (64 tokens are well inside it)."""
_embedder_lock = threading.Lock()


def embed_head(normalized_text: str, tokens: int) -> FloatArray:
    """The MiniLM embedding of the first `tokens` tokens of a text (the bundled model, loaded once)."""
    from pilothouse.embeddings import load_minilm

    with _embedder_lock:  # load_minilm is itself locked; this keeps first-use loading to one thread
        model = load_minilm()
    ids = model.tokenize([normalized_text[:_EMBED_CHARS]])[0]
    if len(ids) > tokens:
        ids = ids[: tokens - 1] + ids[-1:]  # keep [SEP]
    vector: FloatArray = model.embed_ids([ids])[0]
    return vector


class InjectionClassifier:
    """The learned classifier (see the module docstring). Options: `use_embedding` (default True: use the
    MiniLM part of the model when it has one; False scores with lexical features only, faster)."""

    name: ClassVar[str] = "injection_classifier"
    redacts: ClassVar[bool] = False

    def __init__(self, *, use_embedding: bool = True) -> None:
        if not isinstance(use_embedding, bool):
            raise TypeError("use_embedding must be true or false")
        self.use_embedding = use_embedding

    @property
    def model(self) -> InjectionModel:
        return load_model()

    def findings(
        self, text: str, ctx: ScanContext, norm: Normalized | None = None
    ) -> tuple[float, tuple[Finding, ...]]:
        """(score, findings) for `text`; `norm`: `normalize(text)` when the caller has it."""
        model = self.model
        norm = normalize(text) if norm is None else norm
        if not norm.text.strip():
            return 0.0, ()
        if ctx.mode == "indirect":
            best, span = self._instruction_sentence(model, norm.text)
            if best < 0.5:
                return best, ()
            start, end = norm.span(*span)
            return best, (Finding("embedded_instruction", start, end, best, f"addressed to the AI ({model.version})"),)
        embedding = None
        if self.use_embedding and model.embed_tokens:
            embedding = embed_head(norm.text, model.embed_tokens)
        direct = round(calibrate(model.direct.probability(model.ids(norm.text), embedding), model.direct.threshold), 6)
        found: list[Finding] = []
        if direct >= 0.5:
            found.append(Finding("injection_classifier", 0, len(text), direct, f"classifier {model.version}"))
        return direct, tuple(found)

    def _instruction_sentence(self, model: InjectionModel, normalized: str) -> tuple[float, tuple[int, int]]:
        spans, cues = segment_cues(normalized)
        if not spans:
            return 0.0, (0, 0)
        head = model.indirect
        logits = [head.logit(model.ids(normalized[s:e]), row) for (s, e), row in zip(spans, cues, strict=True)]
        best = max(range(len(spans)), key=logits.__getitem__)
        probability = head.document_probability(logits[best], len(spans))
        return round(calibrate(probability, head.threshold), 6), spans[best]

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        score, findings = self.findings(text, ctx)
        return Verdict(scanner=self.name, score=score, findings=findings)
