"""The semantic cache: answer a question with the cached answer to a question that means the same.

A hit needs all of:
1. the same partition: project, public model, parameters, tools, system prompt and every earlier turn equal
   (keys.context_hash); only the last user message may differ;
2. cosine similarity of the MiniLM embeddings of the two last messages >= `cache.semantic.threshold`;
3. the contrast checks pass (contrast.py: the two questions do not differ in negation, opposites, numbers,
   dates, units or names);
4. the answer the match points at is still cached.

The embedding runs in a worker thread (the event loop keeps serving) while the store fetches what other
replicas added to the partition; the vector search itself runs on this replica's copy (a `VectorIndex`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache import contrast
from pilothouse.gateway.cache.store import CacheStore, VectorMatch, VectorRecord
from pilothouse.vectors import FloatArray

Embed = Callable[[str], "FloatArray | None"]


@dataclass(slots=True)
class SemanticLookup:
    vector: FloatArray | None  # None: the text is too long to embed whole (not semantically cached)
    match: VectorMatch | None = None
    value: bytes | None = None
    refused: list[str] | None = None  # contrast-check refusals of candidates above the threshold


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

    async def vector(self, text: str) -> FloatArray | None:
        return await asyncio.to_thread(self.embed, text)

    async def lookup(self, namespace: str, partition: str, text: str) -> SemanticLookup:
        vector, _ = await asyncio.gather(self.vector(text), self.store.refresh(partition))
        result = SemanticLookup(vector)
        if vector is None:
            return result
        matches = self.store.search_vectors(
            partition, vector, limit=self.settings.candidates, min_score=self.settings.threshold
        )
        if not matches:
            return result
        query = contrast.features(text) if self.settings.contrast_checks else None
        for match in matches:
            if query is not None:
                verdict = contrast.compare(query, contrast.features(match.text))
                if not verdict.ok:
                    result.refused = [*(result.refused or []), f"{match.score:.3f} {verdict.reason}"]
                    continue
            value = await self.store.get(namespace, match.key)
            if value is not None:
                result.match, result.value = match, value
                return result
        return result

    async def add(self, partition: str, key: str, text: str, vector: FloatArray, expires_at: float) -> None:
        record = VectorRecord(key=key, text=text, vector=np.asarray(vector, dtype=np.float32), expires_at=expires_at)
        await self.store.add_vector(partition, record)
