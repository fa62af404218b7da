"""The semantic cache: answer a question with the cached answer to a question that means the same.

A hit needs all of:
1. the same partition: project, public model, parameters, tools, system prompt and every earlier turn equal
   (keys.context_hash); only the last user message may differ;
2. cosine similarity of the MiniLM embeddings of the two last messages >= the threshold: the project's own
   (gateway/cache/thresholds.py) or `cache.semantic.threshold`;
3. the contrast check passes (contrast.py: nothing in one question that the cached answer did not address,
   no negation, number, date, unit, name or order that differs), whatever the threshold;
4. the answer the match points at is still cached, readable (not sealed: privacy.py).

The embedding runs in a worker thread (the event loop keeps serving) while the store fetches what other
replicas added to the partition; the vector search itself runs on this replica's copy (a `VectorIndex`).
`SemanticLookup` keeps what was found and decided, for the trace (stage.py) and `pilothouse cache explain`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache import contrast
from pilothouse.gateway.cache.contrast import Verdict
from pilothouse.gateway.cache.privacy import is_sealed
from pilothouse.gateway.cache.store import CacheStore, VectorMatch, VectorRecord
from pilothouse.vectors import FloatArray

Embed = Callable[[str], "FloatArray | None"]

FIRST_PASS = 0.8  # the first search looks only this high (see SemanticCache.lookup); then down to the threshold

Decision = Literal["hit", "refused", "below_threshold", "not_checked"]
"""What the contrast check decided on a lookup: a candidate passed it (`hit`); every candidate at or above the
threshold was refused (`refused`); no candidate reached the threshold, so nothing was checked
(`below_threshold`); or no check ran: checks off, an exact hit, a question too long to embed (`not_checked`)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A match at or above the threshold, and the contrast check's verdict on it (None: checks are off)."""

    match: VectorMatch
    verdict: Verdict | None


@dataclass(slots=True)
class SemanticLookup:
    vector: FloatArray | None  # None: the text is too long to embed whole (not semantically cached)
    threshold: float  # the threshold the lookup used
    checks: bool = True  # whether the contrast checks were on
    candidates: list[Candidate] = field(default_factory=list)  # best first, as far as the lookup went
    match: VectorMatch | None = None
    value: bytes | None = None

    @property
    def score(self) -> float | None:
        """The best candidate's similarity (None: none reached the threshold)."""
        return self.candidates[0].match.score if self.candidates else None

    @property
    def decision(self) -> Decision:
        if self.vector is None or (self.candidates and not self.checks):
            return "not_checked"
        if not self.candidates:
            return "below_threshold"
        return "hit" if any(c.verdict is not None and c.verdict.ok for c in self.candidates) else "refused"

    @property
    def refusal(self) -> Verdict | None:
        """The best refused candidate's verdict, when every candidate was refused."""
        if self.decision != "refused":
            return None
        return self.candidates[0].verdict

    @property
    def refused(self) -> list[str] | None:
        """Each refused candidate as "similarity kind: reason" (None: none was refused)."""
        refused = [(c.match.score, c.verdict) for c in self.candidates if c.verdict is not None and not c.verdict.ok]
        return [f"{score:.3f} {v.kind or 'refused'}: {v.reason}" for score, v in refused] or None


def minilm_embedder() -> Embed:
    """The bundled all-MiniLM-L6-v2, loaded on first use; texts longer than its window are not embedded
    (their tails would be invisible to the comparison)."""
    from pilothouse.embeddings.minilm import load_minilm

    model = None

    def embed(text: str) -> FloatArray | None:
        nonlocal model
        if model is None:
            model = load_minilm()
        ids = model.tokenize([text])
        if len(ids[0]) >= model.max_seq_length:
            return None
        vector: FloatArray = model.embed_ids(ids)[0]
        return vector

    return embed


class SemanticCache:
    def __init__(self, settings: SemanticCacheSettings, store: CacheStore, embed: Embed | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embed = embed or minilm_embedder()
        self.checker = contrast.default_checker()  # process-wide: its word vectors are cached across caches

    async def vector(self, text: str) -> FloatArray | None:
        return await asyncio.to_thread(self.embed, text)

    def verdict(self, query: str, cached: str) -> Verdict:
        """The contrast check of answering `query` with the answer cached for `cached`: the one place the
        cache calls the checker (lookups and `pilothouse cache explain` both come here)."""
        return self.checker.compare(query, cached)

    def verdict_without_model(self, query: str, cached: str) -> Verdict | None:
        """`verdict`, or None where it would have to run the model (a word not in the shipped table and not
        seen before): cheap enough for the event loop."""
        return self.checker.compare_without_model(query, cached)

    def _until_passed(self, query: str, cached: list[str], *, model: bool = True) -> list[Verdict | None]:
        """Verdicts on `cached` in order, up to and including the first that passes (the rest are not needed);
        a text met twice (two entries cached for one question) is checked once. `model` False: stops before
        the first text whose check would need the model."""
        verdicts: list[Verdict | None] = []
        seen: dict[str, Verdict] = {}
        for text in cached:
            verdict = seen.get(text)
            if verdict is None:
                verdict = self.verdict(query, text) if model else self.verdict_without_model(query, text)
            if verdict is None:
                break
            seen[text] = verdict
            verdicts.append(verdict)
            if verdict.ok:
                break
        return verdicts

    async def lookup(
        self, namespace: str, partition: str, text: str, *, threshold: float | None = None
    ) -> SemanticLookup:
        """The best cached answer for `text` in `partition`; `threshold`: the project's own (None: the
        configured one). A lower threshold brings more candidates, each still put to the contrast check."""
        used = self.settings.threshold if threshold is None else threshold
        checks = self.settings.contrast_checks
        vector, _ = await asyncio.gather(self.vector(text), self.store.refresh(partition))
        result = SemanticLookup(vector, used, checks)
        if vector is None:
            return result
        # First only the matches at or above FIRST_PASS, where the index's pre-filter reads few rows; candidates
        # are checked best first, so when one of those passes, a lower one would never have been looked at.
        limit = self.settings.candidates
        matches = self.store.search_vectors(partition, vector, limit=limit, min_score=max(used, FIRST_PASS))
        complete = used >= FIRST_PASS or len(matches) >= limit  # nothing below could be among the best
        done = 0
        while True:
            done = await self._check_in_order(namespace, text, matches, done, result)
            if result.match is not None or complete:
                return result
            complete = True
            checked = {c.match.key for c in result.candidates}
            wider = self.store.search_vectors(partition, vector, limit=limit, min_score=used)
            matches = matches + [m for m in wider if m.key not in checked][: limit - len(matches)]

    async def _check_in_order(
        self, namespace: str, text: str, matches: list[VectorMatch], done: int, result: SemanticLookup
    ) -> int:
        """Put matches[done:] to the check best first; the first that passes and whose answer is still cached
        becomes `result.match`. Returns how many matches were looked at."""
        checks = self.settings.contrast_checks
        while done < len(matches):
            rest = matches[done:]
            verdicts: list[Verdict | None] = [None] * len(rest)
            if checks:  # best first, stopping at the first that passes: on the event loop while no word needs
                # the model (sub-millisecond), the rest in a worker thread (a MiniLM call costs milliseconds)
                texts = [m.text for m in rest]
                verdicts = self._until_passed(text, texts, model=False)
                passed = bool(verdicts) and verdicts[-1] is not None and verdicts[-1].ok
                if len(verdicts) < len(texts) and not passed:
                    verdicts += await asyncio.to_thread(self._until_passed, text, texts[len(verdicts) :])
            for match, verdict in zip(rest, verdicts, strict=False):
                done += 1
                result.candidates.append(Candidate(match, verdict))
                if verdict is not None and not verdict.ok:
                    continue
                value = await self.store.get(namespace, match.key)
                if value is not None and not is_sealed(value):  # sealed: only its own request opens it
                    result.match, result.value = match, value
                    return done
                break  # its answer expired meanwhile: check the candidates after it
        return done

    async def add(self, partition: str, key: str, text: str, vector: FloatArray, expires_at: float) -> None:
        record = VectorRecord(key=key, text=text, vector=np.asarray(vector, dtype=np.float32), expires_at=expires_at)
        await self.store.add_vector(partition, record)
