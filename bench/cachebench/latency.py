"""Lookup latency at scale: the cache lookup stage (`ResponseCache.lookup_request`) timed per request, on a
store holding N entries, for the memory and the Redis backends."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.config import CacheSettings, Deployment, ModelEntry, SemanticCacheSettings, Settings
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.cache.keys import context_hash, exact_key
from pilothouse.gateway.cache.store import CacheStore, VectorRecord
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.tracing.model import TraceRecord

from . import corpus
from .checks import Check, current_check, plugged

NAMESPACE = "bench"
PARAMS = {"temperature": 0, "max_tokens": 64}


@dataclass(frozen=True)
class CheckUnderTest:
    label: str  # "today's check", "new check"
    check: Check | None = None  # None: the cache's own
    threshold: float | None = None  # None: the configured default


@dataclass
class Latency:
    name: str
    backend: str
    entries: int
    samples: list[float] = field(default_factory=list)  # ms
    hits: int = 0
    notes: str = ""

    def summary(self) -> dict[str, Any]:
        ms = np.asarray(self.samples)
        return {
            "name": self.name,
            "backend": self.backend,
            "entries": self.entries,
            "lookups": int(ms.size),
            "hits": self.hits,
            "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
            "notes": self.notes,
        }


def bench_settings(semantic: SemanticCacheSettings | None = None) -> Settings:
    model = ModelEntry(name=corpus.MODEL, deployments=[Deployment(provider="fake", model="fake")])
    cache = CacheSettings(enabled=True, semantic=semantic or SemanticCacheSettings())
    return Settings(include_default_models=False, models=[model], cache=cache)


def exact_body(i: int) -> dict[str, Any]:
    content = f"Question {i}: how do I configure the setting number {i} of the billing service?"
    return {"model": corpus.MODEL, "messages": [{"role": "user", "content": content}], **PARAMS}


def semantic_body(system: str, question: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return {"model": corpus.MODEL, "messages": messages, **PARAMS}


async def bulk(calls: list[Callable[[], Awaitable[Any]]], width: int = 64) -> None:
    for start in range(0, len(calls), width):
        await asyncio.gather(*(c() for c in calls[start : start + width]))


async def timed_lookups(cache: ResponseCache, gw: Gateway, bodies: list[dict[str, Any]], result: Latency) -> None:
    for raw in bodies:
        trace = TraceRecord(project_id=NAMESPACE, name="chat", api_key_id="k")
        prep = gw.prepare_chat(raw, trace)
        started = time.perf_counter()
        _, hit = await cache.lookup_request(prep, trace, ())
        result.samples.append((time.perf_counter() - started) * 1000.0)
        result.hits += hit is not None


async def exact(store: CacheStore, backend: str, entries: int, lookups: int) -> list[Latency]:
    settings = bench_settings()
    gw = Gateway(settings, ProviderPool(settings), default_price_book())
    cache = ResponseCache(settings, store)

    def put(i: int) -> Callable[[], Awaitable[None]]:
        raw = exact_body(i)
        key = exact_key(corpus.MODEL, raw["messages"], PARAMS)
        return lambda: store.set(NAMESPACE, key, corpus.answer(i), 3600)

    await bulk([put(i) for i in range(entries)])
    rng = random.Random(1)
    hits = Latency("exact hit", backend, entries)
    misses = Latency("exact miss", backend, entries)
    warm = Latency("warm-up", backend, entries)
    await timed_lookups(cache, gw, [exact_body(rng.randrange(entries)) for _ in range(200)], warm)
    await timed_lookups(cache, gw, [exact_body(rng.randrange(entries)) for _ in range(lookups)], hits)
    await timed_lookups(cache, gw, [exact_body(entries + i) for i in range(lookups)], misses)
    return [hits, misses]


@dataclass
class SemanticCorpus:
    texts: list[str]  # base questions
    bases: np.ndarray  # their embeddings
    vectors: np.ndarray  # all indexed vectors
    owner: np.ndarray  # base of each vector


def build_semantic_corpus(entries: int, n_bases: int, cache_dir: Path) -> SemanticCorpus:
    texts = corpus.questions(n_bases)
    bases = corpus.embed_cached(texts, cache_dir)
    vectors, owner = corpus.variants(bases, entries)
    return SemanticCorpus(texts, bases, vectors, owner)


def system_prompt(partition: int) -> str:
    return f"You are the support assistant of product line {partition}. Answer briefly."


def partition_name(partition: int) -> str:
    raw = semantic_body(system_prompt(partition), "x")
    return f"{NAMESPACE}:{context_hash(corpus.MODEL, raw['messages'], PARAMS)}"


async def load_semantic(store: CacheStore, data: SemanticCorpus, partitions: int) -> None:
    expires = time.time() + 3600

    def put(j: int) -> Callable[[], Awaitable[Any]]:
        base = int(data.owner[j])
        record = VectorRecord(f"sem-{j}", data.texts[base], data.vectors[j], expires)
        part = partition_name(base % partitions)
        return lambda: asyncio.gather(
            store.add_vector(part, record), store.set(NAMESPACE, f"sem-{j}", corpus.answer(j), 3600)
        )

    await bulk([put(j) for j in range(len(data.vectors))])


async def semantic(
    store: CacheStore,
    backend: str,
    data: SemanticCorpus,
    partitions: int,
    lookups: int,
    label: str,
    *,
    queries: corpus.Queries,
    embedding: bool = True,
    check: CheckUnderTest | None = None,
) -> list[Latency]:
    """Timed semantic lookups. `embedding=False`: the question vectors are computed beforehand and handed
        over by the embedder hook, so what is timed is everything but the model (thread hop, sync, search,
        contrast checks, answer read). `queries`: where the questions come from (none repeats within a run, so
    no per-text cache is warm for them). `check`: the contrast check and threshold the lookup uses (default: the
        package's own at the configured threshold)."""
    check = check or CheckUnderTest("new check")
    threshold = check.threshold if check.threshold is not None else SemanticCacheSettings().threshold
    settings = bench_settings(SemanticCacheSettings(enabled=True, threshold=threshold))
    gw = Gateway(settings, ProviderPool(settings), default_price_book())
    cache = ResponseCache(settings, store)
    rng = random.Random(5)

    def hit_body() -> dict[str, Any]:
        base, text = queries.hit()
        return semantic_body(system_prompt(base % partitions), text)

    entries = len(data.vectors)
    suffix = "" if embedding else ", without the embedding"
    warm_bodies = [hit_body() for _ in range(50)]
    hit_bodies = [hit_body() for _ in range(lookups)]
    miss_bodies = [semantic_body(system_prompt(rng.randrange(partitions)), queries.miss()) for _ in range(lookups)]
    if not embedding:
        model = cache.semantic.embed
        vectors = {
            b["messages"][-1]["content"]: model(b["messages"][-1]["content"])
            for b in (*warm_bodies, *hit_bodies, *miss_bodies)
        }
        cache.semantic.embed = vectors.__getitem__
    name = f"semantic, {check.label} {threshold:g}, {label}"
    hits = Latency(f"{name}, reworded question{suffix}", backend, entries)
    misses = Latency(f"{name}, unrelated question{suffix}", backend, entries)
    with plugged(cache.semantic, check.check):
        await timed_lookups(cache, gw, warm_bodies, Latency("warm-up", backend, entries))
        await timed_lookups(cache, gw, hit_bodies, hits)
        await timed_lookups(cache, gw, miss_bodies, misses)
    return [hits, misses]


def components(
    data: SemanticCorpus, lookups: int, checks: list[CheckUnderTest], queries: corpus.Queries
) -> list[Latency]:
    """Where a semantic lookup's time goes: the embedding alone, and per check the search alone at N rows and
    the contrast check alone (every candidate the search returns for a reworded question, as the lookup does;
    each check gets questions it has not seen)."""
    from pilothouse.gateway.cache.semantic import minilm_embedder
    from pilothouse.vectors import FloatArray, MemoryVectorIndex, VectorItem

    embed = minilm_embedder()
    texts = [queries.hit()[1] for _ in range(lookups * len(checks))]
    embed(texts[0])
    embedding = Latency("MiniLM embedding of the question (alone)", "-", 0)
    vectors: list[FloatArray] = []
    for text in texts:
        started = time.perf_counter()
        vector = embed(text)
        assert vector is not None
        vectors.append(vector)
        embedding.samples.append((time.perf_counter() - started) * 1000.0)
    index = MemoryVectorIndex(max_per_partition=len(data.vectors))
    expires = time.time() + 3600
    index.add(
        VectorItem(f"k{j}", data.vectors[j], text=data.texts[int(data.owner[j])], expires_at=expires)
        for j in range(len(data.vectors))
    )
    out = [embedding]
    candidates = SemanticCacheSettings().candidates
    for n, under_test in enumerate(checks):
        threshold = under_test.threshold if under_test.threshold is not None else SemanticCacheSettings().threshold
        name = f"{under_test.label} {threshold:g}"
        search = Latency(f"vector search (alone), {name}, one partition", "memory", len(data.vectors))
        check = under_test.check or current_check(embed)
        checking = Latency(f"contrast check (alone), {name}, all candidates", "-", len(data.vectors))
        check("How do I reset my password?", "How can I reset my password?")  # loads what it needs
        mine = slice(n * lookups, (n + 1) * lookups)
        for text, vector in zip(texts[mine], vectors[mine], strict=True):
            started = time.perf_counter()
            matches = index.search(vector, k=candidates, min_score=threshold)
            search.samples.append((time.perf_counter() - started) * 1000.0)
            search.hits += bool(matches)
            started = time.perf_counter()
            verdicts = [check(text, m.text) for m in matches]
            checking.samples.append((time.perf_counter() - started) * 1000.0)
            checking.hits += any(v.ok for v in verdicts)
        out += [search, checking]
    return out
