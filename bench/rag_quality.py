"""Retrieval quality on CISI: Pilothouse's BM25, dense and hybrid retrieval against `bm25s` alone and a plain
dense baseline on the same embeddings, in one run.

    .venv/bin/python bench/rag_quality.py                       # the whole collection, ~2-4 min on 2 cores
    .venv/bin/python bench/rag_quality.py --json-out bench/results/rag_quality.json
    .venv/bin/python bench/rag_quality.py --help

What runs (every system ranks the top 100 documents of each judged query; nDCG@10, MRR, recall@10/100 from
`CISI.REL`):
- `bm25s alone`: bm25s 0.3 directly (English stop words, PyStemmer when installed, k1 1.5, b 0.75);
- `dense baseline`: a NumPy dot product of the same all-MiniLM-L6-v2 vectors (document: title + abstract);
- `pilothouse keyword`, `pilothouse dense`, `pilothouse hybrid ...`: `pilothouse.rag.retrieve.retrieve` over the
  collection's `RagIndex` (`open_rag_index`, exact dense search + BM25), one chunk per document, every document
  open to the project, the query vectors passed in (the same as the baseline's).

Fusion settings are tuned on a tuning half of the judged queries only, split before anything is tuned
(`split_queries`, seed 15): the grid covers RRF (constant k, dense weight) and weighted score fusion
(min-max / z-score, dense weight). The report gives every system on the tuning half, the held-out half and all
queries; the claim "hybrid beats the better of bm25s alone and the dense baseline" is checked on the held-out
half, with the textbook RRF setting (k 60, equal weights: nothing tuned), with the package's defaults (k 30, dense
3 : keyword 1, chosen from this bench's tuning half) and with the setting tuned in this run.

The document vectors are cached in `--cache` (keyed by the texts' hash), so a second run skips embedding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from pilothouse.rag.embedders import DEFAULT_MODEL, embedder_for
from pilothouse.rag.evaluation import Qrels, Scores, read_qrels, read_smart, score_run, split_queries
from pilothouse.rag.index.factory import open_rag_index
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.retrieve import Query, retrieve
from pilothouse.rag.types import CollectionInfo, Identity, IndexedChunk

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rag" / "cisi"
DEPTH = 100
RECALL_KS = (10, 100)

try:
    import Stemmer as _stemmer_module

    STEMMER: Any = _stemmer_module.Stemmer("english")
except ImportError:  # pragma: no cover - depends on the environment
    STEMMER = None


@dataclass(frozen=True)
class Corpus:
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]  # judged queries only
    qrels: Qrels


def load(data: Path, limit_queries: int | None) -> Corpus:
    for name in ("CISI.ALL", "CISI.QRY", "CISI.REL"):
        if not (data / name).is_file():
            sys.exit(f"error: {data / name} is missing (pass --data, the folder with CISI.ALL, CISI.QRY, CISI.REL)")
    docs = read_smart(data / "CISI.ALL")
    qrels = read_qrels(data / "CISI.REL")
    queries = {q.id: q.text for q in read_smart(data / "CISI.QRY") if q.id in qrels}
    if limit_queries is not None:
        keep = sorted(queries, key=int)[:limit_queries]
        queries = {q: queries[q] for q in keep}
        qrels = {q: qrels[q] for q in keep}
    return Corpus([d.id for d in docs], [f"{d.title}. {d.text}".strip() for d in docs], queries, qrels)


def embed_docs(texts: list[str], cache: Path | None, model: str = DEFAULT_MODEL) -> np.ndarray:
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"cisi-{model}-{digest}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    started = time.perf_counter()
    embedder = embedder_for(model)
    out = np.zeros((len(texts), embedder.dimensions), dtype=np.float32)
    step = 64
    for start in range(0, len(texts), step):
        out[start : start + step] = embedder.embed(texts[start : start + step])
        print(f"\rembedding documents {min(start + step, len(texts))}/{len(texts)}", end="", file=sys.stderr)
    print(f" ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


Run = dict[str, list[str]]


def bm25s_alone(corpus: Corpus) -> Run:
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    tokens = bm25s.tokenize(corpus.doc_texts, stopwords="en", stemmer=STEMMER, show_progress=False)
    retriever.index(tokens, show_progress=False)
    run: Run = {}
    for qid, text in corpus.queries.items():
        q = bm25s.tokenize([text], stopwords="en", stemmer=STEMMER, show_progress=False)
        docs, scores = retriever.retrieve(q, k=DEPTH, show_progress=False)
        run[qid] = [corpus.doc_ids[int(i)] for i, s in zip(docs[0], scores[0], strict=True) if s > 0]
    return run


def dense_baseline(corpus: Corpus, doc_vectors: np.ndarray, query_vectors: Mapping[str, np.ndarray]) -> Run:
    run: Run = {}
    for qid, vector in query_vectors.items():
        scores = doc_vectors @ vector
        best = np.argsort(-scores, kind="stable")[:DEPTH]
        run[qid] = [corpus.doc_ids[int(i)] for i in best]
    return run


def build_index(
    corpus: Corpus, doc_vectors: np.ndarray, data_dir: Path, model: str = DEFAULT_MODEL
) -> tuple[CollectionInfo, RagIndex]:
    info = CollectionInfo(
        id="bench-cisi",
        project_id="bench",
        name="cisi",
        embedding_model=model,
        dimensions=int(doc_vectors.shape[1]),
        index_kind="exact",
    )
    index = open_rag_index(info, data_dir=data_dir)
    index.upsert(
        [
            IndexedChunk(id=doc_id, text=text, vector=vec, metadata={"_acl": ["*"], "_document": doc_id})
            for doc_id, text, vec in zip(corpus.doc_ids, corpus.doc_texts, doc_vectors, strict=True)
        ]
    )
    return info, index


def pilothouse_run(
    corpus: Corpus,
    info: CollectionInfo,
    index: RagIndex,
    query_vectors: Mapping[str, np.ndarray],
    qids: Iterable[str],
    **settings: Any,
) -> Run:
    identity = Identity(project_id=info.project_id)
    run: Run = {}
    for qid in qids:
        query = Query(
            text=corpus.queries[qid],
            k=DEPTH,
            vector=[float(x) for x in query_vectors[qid]],
            embedding_model=info.embedding_model,
            **settings,
        )
        result = retrieve(index, info, identity, query, embed=_never)
        run[qid] = [hit.id for hit in result.hits]
    return run


def _never(text: str) -> np.ndarray:
    raise AssertionError("the bench passes query vectors in")


def subset(run: Run, qrels: Qrels, qids: Sequence[str]) -> tuple[Run, Qrels]:
    return {q: run.get(q, []) for q in qids}, {q: qrels[q] for q in qids}


def grid() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for rrf_k in (5, 10, 30, 60, 100):
        for dense_w in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0):
            out.append(
                (
                    f"rrf k={rrf_k} dense={dense_w}",
                    {"fusion": "rrf", "rrf_k": rrf_k, "weights": {"dense": dense_w, "keyword": 1.0}},
                )
            )
    for norm in ("minmax", "zscore"):
        for dense_w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            out.append(
                (
                    f"weighted {norm} dense={dense_w}",
                    {
                        "fusion": "weighted",
                        "normalisation": norm,
                        "weights": {"dense": dense_w, "keyword": round(1 - dense_w, 2)},
                    },
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with CISI.ALL/QRY/REL")
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "bench" / "results" / "cache", help="document vector cache"
    )
    parser.add_argument("--no-cache", action="store_true", help="embed the documents again")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"embedding model (default {DEFAULT_MODEL})")
    parser.add_argument("--limit-queries", type=int, default=None, help="first N judged queries (a quick run)")
    parser.add_argument("--candidates", type=int, default=DEPTH, help="chunks each retriever returns to fusion")
    parser.add_argument("--json-out", type=Path, default=None, help="write the results as JSON here as well")
    args = parser.parse_args(argv)

    corpus = load(args.data, args.limit_queries)
    tune, held = split_queries(sorted(corpus.queries))
    doc_vectors = embed_docs(corpus.doc_texts, None if args.no_cache else args.cache, args.model)
    embedder = embedder_for(args.model)
    qids = sorted(corpus.queries, key=int)
    query_matrix = embedder.embed([corpus.queries[q] for q in qids])
    query_vectors = {q: query_matrix[i] for i, q in enumerate(qids)}

    runs: dict[str, Run] = {}
    timings: dict[str, float] = {}

    def timed(name: str, make: Callable[[], Run]) -> None:
        started = time.perf_counter()
        runs[name] = make()
        timings[name] = (time.perf_counter() - started) * 1000.0 / max(1, len(corpus.queries))

    timed("bm25s alone", lambda: bm25s_alone(corpus))
    timed("dense baseline", lambda: dense_baseline(corpus, doc_vectors, query_vectors))
    with tempfile.TemporaryDirectory(prefix="rag-quality-") as tmp:
        info, index = build_index(corpus, doc_vectors, Path(tmp), args.model)
        base = {"candidates": args.candidates}

        def ours(**settings: Any) -> Callable[[], Run]:
            return lambda: pilothouse_run(corpus, info, index, query_vectors, qids, **base, **settings)

        timed("pilothouse keyword", ours(mode="keyword"))
        timed("pilothouse dense", ours(mode="dense"))
        timed(
            "pilothouse hybrid rrf (textbook: k 60, equal weights)",
            ours(mode="hybrid", rrf_k=60, weights={"dense": 1.0, "keyword": 1.0}),
        )
        timed("pilothouse hybrid rrf (defaults)", ours(mode="hybrid"))

        # Tuning sees the tuning half only.
        tuned: list[tuple[float, str, dict[str, Any]]] = []
        for label, settings in grid():
            run = pilothouse_run(corpus, info, index, query_vectors, tune, mode="hybrid", **base, **settings)
            tuned.append((score_run(*subset(run, corpus.qrels, tune)).ndcg_10, label, settings))
        tuned.sort(key=lambda t: -t[0])
        best_score, best_label, best_settings = tuned[0]
        timed(f"pilothouse hybrid {best_label} (tuned)", ours(mode="hybrid", **best_settings))
        index.close()

    report = make_report(corpus, runs, timings, tune, held, best_label, best_score)
    print_report(report)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


def make_report(
    corpus: Corpus,
    runs: dict[str, Run],
    timings: dict[str, float],
    tune: list[str],
    held: list[str],
    best_label: str,
    best_tune_ndcg: float,
) -> dict[str, Any]:
    parts = {"tuning": tune, "held-out": held, "all": sorted(corpus.queries)}
    table: dict[str, dict[str, dict[str, float | int]]] = {}
    for name, run in runs.items():
        table[name] = {}
        for part, qids in parts.items():
            scores: Scores = score_run(*subset(run, corpus.qrels, qids), recall_ks=RECALL_KS)
            table[name][part] = scores.to_json()
        table[name]["all"]["ms_per_query"] = round(timings[name], 3)

    def held_ndcg(name: str) -> float:
        return float(table[name]["held-out"]["ndcg@10"])

    better_baseline = max(held_ndcg("bm25s alone"), held_ndcg("dense baseline"))
    tuned_name = next(n for n in runs if n.endswith("(tuned)"))
    checks = {
        "hybrid (defaults) beats the better baseline on held-out nDCG@10": held_ndcg("pilothouse hybrid rrf (defaults)")
        > better_baseline,
        "hybrid (tuned) beats the better baseline on held-out nDCG@10": held_ndcg(tuned_name) > better_baseline,
    }
    return {
        "documents": len(corpus.doc_ids),
        "judged_queries": len(corpus.queries),
        "split": {"tuning": len(tune), "held-out": len(held), "seed": 15},
        "tuned_setting": best_label,
        "tuned_setting_tuning_ndcg@10": round(best_tune_ndcg, 4),
        "results": table,
        "checks": checks,
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "stemmer": STEMMER is not None},
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def print_report(report: dict[str, Any]) -> None:
    print(
        f"CISI: {report['documents']} documents, {report['judged_queries']} judged queries "
        f"(tuning {report['split']['tuning']}, held-out {report['split']['held-out']}, seed 15)"
    )
    print(f"tuned on the tuning half: {report['tuned_setting']} (nDCG@10 {report['tuned_setting_tuning_ndcg@10']})")
    results = report["results"]
    ref = results["bm25s alone"]
    head = f"{'system':44} {'part':9} {'nDCG@10':>8} {'MRR':>6} {'R@10':>6} {'R@100':>6} {'vs bm25s':>9}"
    print(head)
    print("-" * len(head))
    for part in ("held-out", "tuning", "all"):
        for name, parts in results.items():
            s = parts[part]
            ratio = s["ndcg@10"] / ref[part]["ndcg@10"] if ref[part]["ndcg@10"] else float("nan")
            print(
                f"{name:44} {part:9} {s['ndcg@10']:8.4f} {s['mrr']:6.3f} {s['recall@10']:6.3f} "
                f"{s['recall@100']:6.3f} {ratio:8.2f}x"
            )
        print()
    print("ms per query (all queries):", ", ".join(f"{n}: {p['all']['ms_per_query']:.1f}" for n, p in results.items()))
    for claim, ok in report["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}: {claim}")


if __name__ == "__main__":
    raise SystemExit(main())
