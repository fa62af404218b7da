"""Cache benchmark: lookup latency at 100k cached entries and semantic-cache quality.

1. exact lookup: the cache lookup stage (`ResponseCache.lookup_request`: key hash, store read, decode, trace
   span) per request with N entries stored, hits and misses, on the memory, SQLite and Redis backends;
2. semantic lookup, embedding included: the same stage when the exact key misses (MiniLM embedding of the
   last user message in a worker thread, Redis sync of the partition, vector search, contrast checks, answer read),
   with N vectors in one partition (one product's support bot: the hard case) and spread over 100
   partitions, on both backends; plus a new Redis replica's time to load N vectors;
3. quality on bench/data/semantic_pairs.jsonl (paraphrases that should hit, contrast pairs that must not):
   precision and hit rate, the threshold sweep (chosen on half the pairs, reported on the other half), per
   category, with and without the contrast checks, and all questions in one partition; the held-out set
   (bench/data/semantic_pairs_holdout.jsonl, written after the threshold and contrast checks were fixed) if present.

Targets: exact p99 < 1 ms, semantic p99 < 10 ms (embedding included), hit precision >= 97%.

    .venv/bin/python bench/cache_bench.py                       # everything, a few minutes on a quiet machine
    .venv/bin/python bench/cache_bench.py --skip-redis --entries 20000
    .venv/bin/python bench/cache_bench.py --only quality

Redis: PILOTHOUSE_REDIS_URL or --redis-url (default redis://127.0.0.1:6379/0); keys go under a fresh prefix
that is deleted at the end. Results: docs/benchmarks.md ("Caches").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from cachebench import latency, quality
from cachebench.report import print_latency, print_quality, run_meta
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.redis_store import RedisCacheStore
from pilothouse.gateway.cache.sqlite_store import SQLiteCacheStore

BENCH_DIR = Path(__file__).resolve().parent
EXACT_P99_MS = 1.0
SEMANTIC_P99_MS = 10.0
MIN_PRECISION = 0.97


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Exact and semantic cache: lookup latency at N entries and quality on the pairs set.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--entries", type=int, default=100_000, help="cached entries (exact) and vectors (semantic)")
    parser.add_argument("--lookups", type=int, default=2000, help="timed exact lookups of each kind")
    parser.add_argument("--semantic-lookups", type=int, default=400, help="timed semantic lookups of each kind")
    parser.add_argument("--bases", type=int, default=2000, help="distinct embedded questions behind the vectors")
    parser.add_argument("--partitions", type=int, default=100, help="partitions of the spread layout")
    parser.add_argument("--only", choices=["latency", "quality"], help="run one part")
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--redis-url", default=os.environ.get("PILOTHOUSE_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--pairs", type=Path, default=BENCH_DIR / "data" / "semantic_pairs.jsonl")
    parser.add_argument("--holdout", type=Path, default=BENCH_DIR / "data" / "semantic_pairs_holdout.jsonl")
    parser.add_argument(
        "--wait-quiet", type=float, default=0, help="wait up to this many seconds for a 1-minute load average < 0.5"
    )
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args()


async def run_latency(args: argparse.Namespace) -> dict[str, Any]:
    results: list[latency.Latency] = []
    notes: dict[str, Any] = {}
    cache_dir = BENCH_DIR / "results"
    data = latency.build_semantic_corpus(args.entries, args.bases, cache_dir)
    layouts = [(1, "1 partition"), (args.partitions, f"{args.partitions} partitions")]

    memory = MemoryCacheStore(max_entries=args.entries * 3, max_bytes=1 << 34, max_vectors_per_partition=args.entries)
    results += await latency.exact(memory, "memory", args.entries, args.lookups)
    await memory.aclose()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteCacheStore(Path(tmp) / "cache.db", max_entries=args.entries * 3)
        results += await latency.exact(sqlite, "sqlite", args.entries, args.lookups)
        await sqlite.aclose()
    for partitions, label in layouts:
        memory = MemoryCacheStore(
            max_entries=args.entries * 2,
            max_bytes=1 << 34,
            max_vectors_per_partition=args.entries,
            max_vectors=args.entries,
        )
        await latency.load_semantic(memory, data, partitions)
        results += await latency.semantic(memory, "memory", data, partitions, args.semantic_lookups, label)
        results += await latency.semantic(
            memory, "memory", data, partitions, args.semantic_lookups, label, embedding=False
        )
        await memory.aclose()

    if not args.skip_redis:
        prefix = f"ph-bench-{uuid.uuid4().hex[:10]}:"
        options = {"prefix": prefix, "retention_s": 3600, "max_vectors_per_partition": args.entries}
        writer = RedisCacheStore.from_url(args.redis_url, max_vectors=args.entries, **options)
        try:
            await writer.client.ping()
            results += await latency.exact(writer, "redis", args.entries, args.lookups)
            for partitions, label in layouts:
                started = time.perf_counter()
                await latency.load_semantic(writer, data, partitions)
                load_s = time.perf_counter() - started
                reader = RedisCacheStore.from_url(args.redis_url, max_vectors=args.entries, **options)
                started = time.perf_counter()
                for p in range(partitions):
                    await reader.refresh(latency.partition_name(p))
                while len(reader.index) < args.entries and time.perf_counter() - started < 600:
                    await asyncio.sleep(0.05)
                sync_s = time.perf_counter() - started
                notes[f"redis {label}"] = {"load_s": round(load_s, 1), "new_replica_sync_s": round(sync_s, 1)}
                runs = await latency.semantic(reader, "redis", data, partitions, args.semantic_lookups, label)
                runs += await latency.semantic(
                    reader, "redis", data, partitions, args.semantic_lookups, label, embedding=False
                )
                for run in runs:
                    run.notes = f"a new replica loaded {len(reader.index)} vectors in {sync_s:.1f} s"
                results += runs
                await reader.aclose()
                keys = [k async for k in writer.client.scan_iter(match=prefix + "v:*", count=1000)]
                if keys:
                    await writer.client.delete(*keys)
        finally:
            keys = [k async for k in writer.client.scan_iter(match=prefix + "*", count=1000)]
            for start in range(0, len(keys), 1000):
                await writer.client.delete(*keys[start : start + 1000])
            await writer.aclose()

    results += latency.components(data, args.semantic_lookups)
    summaries = [r.summary() for r in results]
    checks = []
    for s in summaries:
        if s["name"].startswith("exact"):
            checks.append(_check(f"exact p99 ms, {s['name']}, {s['backend']}", s["p99_ms"], "<", EXACT_P99_MS))
        elif s["name"].startswith("semantic") and "without the embedding" not in s["name"]:
            checks.append(
                _check(f"semantic p99 ms, {s['name'][10:]}, {s['backend']}", s["p99_ms"], "<", SEMANTIC_P99_MS)
            )
    return {"lookups": summaries, "checks": checks, "notes": notes}


def _check(name: str, value: float | None, op: str, threshold: float) -> dict[str, Any]:
    met = None if value is None else (value < threshold if op == "<" else value >= threshold)
    return {"check": name, "value": value, "op": op, "threshold": threshold, "met": met}


async def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    pairs = quality.load_pairs(args.pairs)
    scored = quality.score(pairs)
    chosen, sweep = quality.choose_threshold(scored)
    expect_hit = (scored.similarity >= chosen) & scored.contrast_ok
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "should_hit": sum(p.expect_hit for p in pairs),
        "threshold": chosen,
        "all": quality.metrics(scored, chosen),
        "test_half": quality.metrics(scored, chosen, subset=np.asarray([p.id % 2 == 0 for p in pairs])),
        "no_contrast": quality.metrics(scored, chosen, use_contrast=False),
        "by_category": quality.by_category(scored, chosen),
        "sweep": sweep,
        "real_path_disagreements": await quality.real_path_agrees(pairs, chosen, expect_hit),
        "shared_partition": await quality.shared_partition(pairs, chosen),
        "wrong_hits": [
            {"cached": p.cached, "query": p.query, "similarity": round(float(s), 3)}
            for p, s, ok in zip(pairs, scored.similarity, scored.contrast_ok, strict=True)
            if not p.expect_hit and ok and s >= chosen
        ],
    }
    checks = [_check("hit precision, all pairs", out["all"]["precision"], ">=", MIN_PRECISION)]
    checks.append(_check("hit precision, test half", out["test_half"]["precision"], ">=", MIN_PRECISION))
    if args.holdout.exists():
        held = quality.load_pairs(args.holdout)
        held_scored = quality.score(held)
        out["holdout"] = quality.metrics(held_scored, chosen)
        out["holdout"]["by_category"] = quality.by_category(held_scored, chosen)
        out["holdout_no_contrast"] = quality.metrics(held_scored, chosen, use_contrast=False)
        out["holdout"]["wrong_hit_pairs"] = [
            {"cached": p.cached, "query": p.query, "similarity": round(float(s), 3)}
            for p, s, ok in zip(held, held_scored.similarity, held_scored.contrast_ok, strict=True)
            if not p.expect_hit and ok and s >= chosen
        ]
        checks.append(_check("hit precision, held-out pairs", out["holdout"]["precision"], ">=", MIN_PRECISION))
    out["checks"] = checks
    return out


async def main() -> int:
    args = parse_args()
    meta = run_meta(args)
    report: dict[str, Any] = {"meta": meta}
    if args.only in (None, "quality"):
        report["quality"] = await run_quality(args)
        print_quality(report["quality"], sys.stdout)
    if args.only in (None, "latency"):
        deadline = time.monotonic() + args.wait_quiet
        while os.getloadavg()[0] >= 0.5 and time.monotonic() < deadline:
            await asyncio.sleep(5)
        report["meta"]["loadavg_before_latency"] = [round(x, 2) for x in os.getloadavg()]
        report["latency"] = await run_latency(args)
        print_latency(report["latency"], meta, sys.stdout)
    report["meta"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at start {meta['loadavg_at_start']}, at end {report['meta']['loadavg_at_end']}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    missed = [c for part in ("quality", "latency") for c in report.get(part, {}).get("checks", []) if c["met"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
