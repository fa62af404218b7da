"""Semantic-cache quality on question pairs: does the query get the cached answer, and should it?

Every pair alone in its own partition, through the real lookup (`SemanticCache.lookup` on a `MemoryCacheStore`):
the query is a hit when the lookup returns the cached entry. Right hit: the pair means the same; wrong hit: it
does not. Precision = right / all hits; paraphrase hit rate = right hits / pairs that mean the same; both with
Wilson 95% intervals. Four rules side by side:

- baseline: today's check (before issue 11) at 0.91;
- new: the package's check at the configured default threshold (`SemanticCacheSettings().threshold`);
- cosine >= 0.91 alone, cosine >= 0.80 alone.

Each pair's cosine and both checks' verdicts are also computed directly; the threshold sweep of the new check
(0.70, or lower with a lower default, to 0.95) uses them, on sets that are not held out only, and the real lookup
must agree with them (the count of disagreements is reported). Shared partition: every cached question of a
set in one partition and each query looked up against all of them with the new rule; hits on a question the set
does not pair with that query are listed for review.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pilothouse.config import SemanticCacheSettings
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.semantic import Embed, SemanticCache, minilm_embedder
from pilothouse.gateway.cache.store import VectorRecord
from pilothouse.vectors import FloatArray

from .checks import Check, Decision, baseline_check, current_check, plugged
from .pairs import Pair, PairSet


def sweep_thresholds() -> list[float]:
    """0.70 to 0.95 by 0.01, reaching down to 0.05 below the configured threshold when that is lower."""
    low = min(0.70, round(SemanticCacheSettings().threshold - 0.05, 2))
    return [round(t, 2) for t in np.arange(low, 0.951, 0.01)]


WRONG_LISTED = 25


@dataclass(frozen=True, slots=True)
class Rule:
    key: str
    label: str
    threshold: float
    check: str  # "baseline", "new" (the cache's own) or "none" (cosine alone)


def rules() -> list[Rule]:
    default = SemanticCacheSettings().threshold
    return [
        Rule("baseline", "today's check, 0.91", 0.91, "baseline"),
        Rule("new", f"new check, {default:g} (default)", default, "new"),
        Rule("cosine_0.91", "cosine >= 0.91 alone", 0.91, "none"),
        Rule("cosine_0.80", "cosine >= 0.80 alone", 0.80, "none"),
    ]


def memo_embedder() -> Embed:
    """MiniLM, each distinct text embedded once per run (the rules look up the same texts)."""
    embed = minilm_embedder()

    @functools.lru_cache(maxsize=1 << 16)
    def cached(text: str) -> FloatArray | None:
        return embed(text)

    def copy(text: str) -> FloatArray | None:
        vector = cached(text)
        return None if vector is None else vector.copy()

    return copy


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of the proportion k/n (95% by default)."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def tally(same: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
    right = int((hit & same).sum())
    wrong = int((hit & ~same).sum())
    positives = int(same.sum())
    return {
        "pairs": int(same.size),
        "same": positives,
        "different": int(same.size) - positives,
        "right_hits": right,
        "wrong_hits": wrong,
        "precision": right / (right + wrong) if right + wrong else None,
        "precision_ci95": wilson(right, right + wrong),
        "hit_rate": right / positives if positives else None,
        "hit_rate_ci95": wilson(right, positives),
    }


@dataclass
class Scored:
    """One set's pairs with what the rules need: cosine, each check's verdict, each rule's real-path hit."""

    pairs: PairSet
    similarity: np.ndarray
    verdicts: dict[str, list[Decision]]  # check name -> one verdict per pair
    hits: dict[str, np.ndarray] = field(default_factory=dict)  # rule key -> real-path hit per pair

    @property
    def same(self) -> np.ndarray:
        return np.asarray([p.same for p in self.pairs.pairs], dtype=bool)

    def ok(self, check: str) -> np.ndarray:
        if check == "none":
            return np.ones(len(self.pairs.pairs), dtype=bool)
        return np.asarray([v.ok for v in self.verdicts[check]], dtype=bool)

    def predicted(self, rule: Rule, threshold: float | None = None) -> np.ndarray:
        t = rule.threshold if threshold is None else threshold
        hit: np.ndarray = (self.similarity >= t) & self.ok(rule.check)
        return hit


def score(pair_set: PairSet, embed: Embed, checks: dict[str, Check]) -> Scored:
    sims = []
    for pair in pair_set.pairs:
        a, b = embed(pair.cached), embed(pair.query)
        sims.append(float(a @ b) if a is not None and b is not None else -1.0)
    verdicts = {name: [check(p.query, p.cached) for p in pair_set.pairs] for name, check in checks.items()}
    return Scored(pair_set, np.asarray(sims), verdicts)


async def real_path(pairs: list[Pair], rule: Rule, embed: Embed, checks: dict[str, Check]) -> np.ndarray:
    """Each pair in its own partition through `SemanticCache.lookup`; True where the query got the cached entry."""
    store = MemoryCacheStore()
    settings = SemanticCacheSettings(enabled=True, threshold=rule.threshold, contrast_checks=rule.check != "none")
    cache = SemanticCache(settings, store, embed)
    hits = []
    with plugged(cache, checks["baseline"] if rule.check == "baseline" else None):
        for n, pair in enumerate(pairs):
            part, key = f"pair-{n}", f"k{n}"
            vector = await cache.vector(pair.cached)
            if vector is None:
                hits.append(False)
                continue
            await cache.add(part, key, pair.cached, vector, time.time() + 600)
            await store.set("q", key, b"answer", 600)
            found = await cache.lookup("q", part, pair.query)
            hits.append(found.match is not None and found.match.key == key)
    await store.aclose()
    return np.asarray(hits, dtype=bool)


def by_class(scored: Scored, rule_list: list[Rule]) -> list[dict[str, Any]]:
    same = scored.same
    classes = np.asarray([p.cls for p in scored.pairs.pairs])
    out = []
    for cls in dict.fromkeys(classes.tolist()):
        mask = classes == cls
        row: dict[str, Any] = {"class": cls, "pairs": int(mask.sum()), "same": int(same[mask].sum())}
        row["rules"] = {r.key: tally(same[mask], scored.hits[r.key][mask]) for r in rule_list}
        out.append(row)
    return out


def sweep(scored: Scored, rule: Rule) -> list[dict[str, Any]]:
    none = Rule("cosine", "cosine alone", 0.0, "none")
    rows = []
    for t in sweep_thresholds():
        row = {"threshold": t, **tally(scored.same, scored.predicted(rule, t))}
        row["cosine_alone_precision"] = tally(scored.same, scored.predicted(none, t))["precision"]
        rows.append(row)
    return rows


def misses(scored: Scored, rule: Rule) -> dict[str, Any]:
    """Why pairs that mean the same did not hit: below the threshold, or refused by the check (per kind)."""
    same, hit = scored.same, scored.hits[rule.key]
    below = same & ~hit & (scored.similarity < rule.threshold)
    kinds: dict[str, int] = {}
    if rule.check != "none":
        for i in np.flatnonzero(same & ~hit & ~below):
            kind = scored.verdicts[rule.check][i].kind or "-"
            kinds[kind] = kinds.get(kind, 0) + 1
    return {"missed": int((same & ~hit).sum()), "below_threshold": int(below.sum()), "refused_by_kind": kinds}


def wrong_hits(scored: Scored, rule: Rule) -> list[dict[str, Any]]:
    rows = []
    for i in np.flatnonzero(scored.hits[rule.key] & ~scored.same):
        p = scored.pairs.pairs[int(i)]
        rows.append(
            {"class": p.cls, "cached": p.cached, "query": p.query, "similarity": round(float(scored.similarity[i]), 3)}
        )
    return rows


async def shared_partition(pairs: list[Pair], embed: Embed) -> dict[str, Any]:
    """All cached questions of a set in one partition, each query looked up against all of them (new rule)."""
    store = MemoryCacheStore()
    cache = SemanticCache(SemanticCacheSettings(enabled=True), store, embed)
    labelled = {(p.cached, p.query): p.same for p in pairs}
    cached = list(dict.fromkeys(p.cached for p in pairs))
    for i, text in enumerate(cached):
        vector = await cache.vector(text)
        if vector is not None:
            await store.add_vector("all", VectorRecord(f"c{i}", text, vector, time.time() + 600))
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


async def evaluate(pair_sets: list[PairSet]) -> dict[str, Any]:
    """Every rule on every set; the sweep on the sets that are not held out."""
    embed = memo_embedder()
    checks = {"baseline": baseline_check(), "new": current_check(embed)}
    rule_list = rules()
    out: dict[str, Any] = {"rules": [_rule_dict(r) for r in rule_list]}
    out["sets"] = []
    pooled_same: list[np.ndarray] = []
    pooled_hit: dict[str, list[np.ndarray]] = {r.key: [] for r in rule_list}
    pooled_scored: list[Scored] = []
    for pair_set in pair_sets:
        scored = score(pair_set, embed, checks)
        for rule in rule_list:
            scored.hits[rule.key] = await real_path(pair_set.pairs, rule, embed, checks)
        same = scored.same
        result: dict[str, Any] = {
            "set": pair_set.name,
            "path": str(pair_set.path),
            "held_out": pair_set.held_out,
            "overall": {r.key: tally(same, scored.hits[r.key]) for r in rule_list},
            "by_class": by_class(scored, rule_list),
            "real_path_disagreements": {
                r.key: int((scored.predicted(r) != scored.hits[r.key]).sum()) for r in rule_list
            },
            "misses": {r.key: misses(scored, r) for r in rule_list if r.check != "none"},
            "wrong_hits": {r.key: wrong_hits(scored, r)[:WRONG_LISTED] for r in rule_list if r.check != "none"},
            "shared_partition": await shared_partition(pair_set.pairs, embed),
        }
        if not pair_set.held_out:
            result["sweep"] = sweep(scored, rule_list[1])
            pooled_scored.append(scored)
            pooled_same.append(same)
            for r in rule_list:
                pooled_hit[r.key].append(scored.hits[r.key])
        out["sets"].append(result)
    if len(pooled_scored) > 1:
        same = np.concatenate(pooled_same)
        out["pooled_not_held_out"] = {
            "sets": [s.pairs.name for s in pooled_scored],
            "overall": {k: tally(same, np.concatenate(v)) for k, v in pooled_hit.items()},
            "sweep": _pooled_sweep(pooled_scored, rule_list[1]),
        }
    return out


def _rule_dict(rule: Rule) -> dict[str, Any]:
    return {"key": rule.key, "label": rule.label, "threshold": rule.threshold, "check": rule.check}


def _pooled_sweep(scored: list[Scored], rule: Rule) -> list[dict[str, Any]]:
    same = np.concatenate([s.same for s in scored])
    return [
        {"threshold": t, **tally(same, np.concatenate([s.predicted(rule, t) for s in scored]))}
        for t in sweep_thresholds()
    ]
