"""Semantic-cache quality on the paraphrase/contrast set (bench/data/semantic_pairs.jsonl).

Each pair is a cached question and a later query, labelled `hit` (the same question: the cached answer is
right for it) or `miss` (a different question: answering it from the cache would be wrong). The pairs were
written before the contrast checks, from the kinds of difference that matter, and not changed after.

- pairwise: each pair alone in its own partition; the query is a hit when the real lookup path returns the
  cached entry. Precision = right hits / all hits; hit rate = right hits / pairs labelled `hit`.
- threshold: swept on the odd-numbered pairs (dev); the chosen one is the lowest with no wrong hit on dev,
  and the even-numbered pairs (test) report what it does on pairs it was not chosen on.
- shared partition: every distinct cached question in one partition, each query looked up against all of
  them; a hit on a question the set does not label for that query is shown for review.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache import contrast
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import SemanticCache, minilm_embedder
from pilothouse.gateway.cache.store import VectorRecord


@dataclass
class Pair:
    id: int
    category: str
    cached: str
    query: str
    expect_hit: bool


@dataclass
class Scored:
    pairs: list[Pair]
    similarity: np.ndarray
    contrast_ok: np.ndarray
    contrast_reason: list[str | None] = field(default_factory=list)


def load_pairs(path: Path) -> list[Pair]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            pairs.append(Pair(row["id"], row["category"], row["cached"], row["query"], row["expect"] == "hit"))
    return pairs


def score(pairs: list[Pair]) -> Scored:
    embed = minilm_embedder()
    sims, oks, reasons = [], [], []
    for pair in pairs:
        a, b = embed(pair.cached), embed(pair.query)
        assert a is not None and b is not None
        sims.append(float(a @ b))
        verdict = contrast.check(pair.query, pair.cached)
        oks.append(verdict.ok)
        reasons.append(verdict.reason)
    return Scored(pairs, np.asarray(sims), np.asarray(oks), reasons)


def metrics(
    scored: Scored, threshold: float, *, use_contrast: bool = True, subset: np.ndarray | None = None
) -> dict[str, Any]:
    expect = np.asarray([p.expect_hit for p in scored.pairs])
    mask = np.ones(len(expect), bool) if subset is None else subset
    hit = (scored.similarity >= threshold) & mask
    if use_contrast:
        hit &= scored.contrast_ok
    right = int((hit & expect).sum())
    wrong = int((hit & ~expect).sum())
    positives = int((expect & mask).sum())
    return {
        "threshold": round(threshold, 3),
        "pairs": int(mask.sum()),
        "hits": right + wrong,
        "right_hits": right,
        "wrong_hits": wrong,
        "precision": right / (right + wrong) if right + wrong else None,
        "hit_rate": right / positives if positives else None,
    }


def choose_threshold(scored: Scored) -> tuple[float, list[dict[str, Any]]]:
    ids = np.asarray([p.id for p in scored.pairs])
    dev = ids % 2 == 1
    sweep = [round(t, 2) for t in np.arange(0.80, 0.981, 0.01)]
    rows = []
    chosen = None
    for t in sweep:
        d = metrics(scored, t, subset=dev)
        rows.append(
            {
                "threshold": t,
                "dev": d,
                "test": metrics(scored, t, subset=~dev),
                "no_contrast": metrics(scored, t, use_contrast=False),
            }
        )
        if chosen is None and d["wrong_hits"] == 0:
            chosen = t
    return (chosen if chosen is not None else sweep[-1]), rows


def by_category(scored: Scored, threshold: float) -> list[dict[str, Any]]:
    out = []
    for category in dict.fromkeys(p.category for p in scored.pairs):
        subset = np.asarray([p.category == category for p in scored.pairs])
        m = metrics(scored, threshold, subset=subset)
        m["category"] = category
        m["expect"] = "hit" if scored.pairs[int(np.flatnonzero(subset)[0])].expect_hit else "miss"
        m["refused_by_contrast"] = int((subset & (scored.similarity >= threshold) & ~scored.contrast_ok).sum())
        out.append(m)
    return out


async def real_path_agrees(pairs: list[Pair], threshold: float, expected: np.ndarray) -> int:
    """Run every pair through SemanticCache itself (store, refresh, search, contrast checks, get); returns how many
    outcomes differ from the analytic sweep (0 unless the two disagree)."""
    store = MemoryCacheStore()
    cache = SemanticCache(SemanticCacheSettings(enabled=True, threshold=threshold), store)
    differ = 0
    for pair, want in zip(pairs, expected, strict=True):
        part = f"pair-{pair.id}"
        vector = await cache.vector(pair.cached)
        assert vector is not None
        await cache.add(part, f"k{pair.id}", pair.cached, vector, time.time() + 600)
        await store.set("q", f"k{pair.id}", b"answer", 600)
        found = await cache.lookup("q", part, pair.query)
        differ += (found.match is not None) != bool(want)
    await store.aclose()
    return differ


async def shared_partition(pairs: list[Pair], threshold: float) -> dict[str, Any]:
    store = MemoryCacheStore()
    cache = SemanticCache(SemanticCacheSettings(enabled=True, threshold=threshold), store)
    labelled = {(p.cached, p.query): p.expect_hit for p in pairs}
    cached = list(dict.fromkeys(p.cached for p in pairs))
    for i, text in enumerate(cached):
        vector = await cache.vector(text)
        assert vector is not None
        record = VectorRecord(f"c{i}", text, vector, time.time() + 600)
        await store.add_vector("all", record)
        await store.set("q", f"c{i}", b"answer", 600)
    right = wrong = 0
    unlabelled: list[tuple[str, str, float]] = []
    for query in dict.fromkeys(p.query for p in pairs):
        found = await cache.lookup("q", "all", query)
        if found.match is None:
            continue
        label = labelled.get((found.match.text, query))
        if label is True or found.match.text == query:
            right += 1
        elif label is False:
            wrong += 1
        else:
            unlabelled.append((query, found.match.text, round(found.match.score, 3)))
    await store.aclose()
    return {"cached_questions": len(cached), "right_hits": right, "wrong_hits": wrong, "unlabelled_hits": unlabelled}
