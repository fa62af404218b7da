"""Ingestion throughput: Pilothouse's whole ingestion (chunking, injection scanning, embedding, store and index
writes) in chunks per second, against a plain sentence-transformers loop embedding the same chunk texts with the
same all-MiniLM-L6-v2 weights, in one run.

Data: the CISI abstracts (../shared/data/rag/cisi/CISI.ALL, 1,460 documents), ingested as records into a fresh
collection on SQLite (exact index) in a temporary folder. The chunk texts Pilothouse produced are then handed to
the peer (bench/rag_ingest_peer.py in bench/.venv-st, created from bench/requirements-sentence-transformers.txt
on first use: sentence-transformers with the local PyTorch CPU wheel), which embeds them one text per call (the
plain loop) and batched (32 per call). Ratios are Pilothouse's chunks/s over each.

    .venv/bin/python bench/rag_ingest.py                      # all 1,460 documents (~3-4 min on 2 quiet cores)
    .venv/bin/python bench/rag_ingest.py --docs 300           # a quicker look
    .venv/bin/python bench/rag_ingest.py --injection off      # without the injection scan at ingestion
    .venv/bin/python bench/rag_ingest.py --skip-peer --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pilothouse.rag.embedders import DEFAULT_MODEL

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CISI = REPO.parent / "shared" / "data" / "rag" / "cisi" / "CISI.ALL"
PEER_VENV = BENCH / ".venv-st"


def _peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-st (first use) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        requirements = BENCH / "requirements-sentence-transformers.txt"
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
    return python


def pilothouse_ingest(docs: int, injection: str, model: str) -> tuple[dict[str, Any], list[str]]:
    from pilothouse.rag.collections import create_collection, open_index
    from pilothouse.rag.embedders import embedder_for
    from pilothouse.rag.evaluation import read_smart
    from pilothouse.rag.ingest import Ingestor
    from pilothouse.rag.settings import CollectionSettings
    from pilothouse.store import rag as repo
    from pilothouse.store.engine import open_store
    from pilothouse.store.projects import create_project

    records = [
        {"id": r.id, "title": r.title, "text": f"{r.title}\n\n{r.text}"} for r in read_smart(CISI)[:docs] if r.text
    ]
    embedder = embedder_for(model)
    embedder.embed(["warm-up"])
    with tempfile.TemporaryDirectory(prefix="rag-ingest-bench-") as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        with store.begin() as conn:
            project = create_project(conn, "bench")
        collection = create_collection(
            store,
            project_id=project.id,
            name="cisi",
            index_kind="exact",
            embedding_model=model,
            settings=CollectionSettings(injection=injection),  # type: ignore[arg-type]
        )
        index = open_index(store, collection, data_dir=Path(tmp))
        ingestor = Ingestor(store, collection, index)
        started, cpu = time.perf_counter(), time.process_time()
        with _scan_clock() as scan:
            report = ingestor.ingest_records(records)
        total_s, total_cpu = time.perf_counter() - started, time.process_time() - cpu
        with store.connect() as conn:
            texts = [c.text for c in repo.iter_chunks(conn, collection.id)]
        started, cpu = time.perf_counter(), time.process_time()
        embedder.embed(texts)
        embed_s, embed_cpu = time.perf_counter() - started, time.process_time() - cpu
        store.dispose()
    chunks = report.chunks_written
    return {
        "model": model,
        "documents": len(records),
        "chunks": chunks,
        "chunks_embedded": report.chunks_embedded,
        "ingest_s": round(total_s, 2),
        "ingest_chunks_per_s": round(chunks / total_s, 1),
        "ingest_cpu_ms_per_chunk": round(1000 * total_cpu / chunks, 1),
        "scan_cpu_ms_per_chunk": round(1000 * scan["cpu_s"] / chunks, 2),
        "scan_cpu_share": round(scan["cpu_s"] / total_cpu, 3),
        "embed_only_s": round(embed_s, 2),
        "embed_only_chunks_per_s": round(len(texts) / embed_s, 1),
        "embed_only_cpu_ms_per_chunk": round(1000 * embed_cpu / len(texts), 1),
        "injection": injection,
        "flagged": len(report.flagged),
    }, texts


@contextmanager
def _scan_clock() -> Iterator[dict[str, float]]:
    """CPU time spent in the ingestion's injection scan (thread time of each call)."""
    from pilothouse.rag.safety import SafetyPolicy

    spent = {"cpu_s": 0.0}
    original = SafetyPolicy.injection_flags

    def timed(self: SafetyPolicy, texts: list[str]) -> list[bool]:
        started = time.thread_time()
        try:
            return original(self, texts)
        finally:
            spent["cpu_s"] += time.thread_time() - started

    SafetyPolicy.injection_flags = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        SafetyPolicy.injection_flags = original  # type: ignore[method-assign]


def peer(texts: list[str], threads: int) -> dict[str, Any]:
    from pilothouse.embeddings import default_model_dir

    job = {"model_dir": str(default_model_dir()), "texts": texts, "threads": threads}
    done = subprocess.run(
        [str(_peer_python()), str(BENCH / "rag_ingest_peer.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the sentence-transformers peer failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    return {
        "loop_s": round(out["loop_s"], 2),
        "loop_chunks_per_s": round(out["n"] / out["loop_s"], 1),
        "loop_cpu_ms_per_chunk": round(1000 * out["loop_cpu_s"] / out["n"], 1),
        "batched_s": round(out["batched_s"], 2),
        "batched_chunks_per_s": round(out["n"] / out["batched_s"], 1),
        "batched_cpu_ms_per_chunk": round(1000 * out["batched_cpu_s"] / out["n"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1460, help="CISI documents to ingest (default: all 1,460)")
    parser.add_argument("--injection", choices=["flag", "off"], default="flag", help="the ingestion scan policy")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"the collection's embedding model ({DEFAULT_MODEL})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="PyTorch threads for the peer")
    parser.add_argument("--skip-peer", action="store_true", help="only Pilothouse")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    ours, texts = pilothouse_ingest(args.docs, args.injection, args.model)
    result: dict[str, Any] = {"pilothouse": ours}
    if not args.skip_peer:
        theirs = peer(texts, args.threads)
        result["sentence_transformers"] = theirs
        result["ratios"] = {
            "ingest_vs_st_loop": round(ours["ingest_chunks_per_s"] / theirs["loop_chunks_per_s"], 2),
            "ingest_vs_st_batched": round(ours["ingest_chunks_per_s"] / theirs["batched_chunks_per_s"], 2),
            "embed_only_vs_st_batched": round(ours["embed_only_chunks_per_s"] / theirs["batched_chunks_per_s"], 2),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"CISI: {ours['documents']} documents -> {ours['chunks']} chunks (injection scan: {ours['injection']}, "
        f"model {ours['model']})"
    )
    print(
        f"  pilothouse ingest (chunk, scan, embed, store, index): {ours['ingest_s']:>7} s  "
        f"{ours['ingest_chunks_per_s']:>7} chunks/s  {ours['ingest_cpu_ms_per_chunk']:>6} CPU ms/chunk "
        f"(injection scan {ours['scan_cpu_ms_per_chunk']} ms, {100 * ours['scan_cpu_share']:.1f}%)"
    )
    print(
        f"  pilothouse embedding only (MiniLM, batched):          {ours['embed_only_s']:>7} s  "
        f"{ours['embed_only_chunks_per_s']:>7} chunks/s  {ours['embed_only_cpu_ms_per_chunk']:>6} CPU ms/chunk"
    )
    if "sentence_transformers" in result:
        st = result["sentence_transformers"]
        print(
            f"  sentence-transformers, plain loop (1 text per call):  {st['loop_s']:>7} s  "
            f"{st['loop_chunks_per_s']:>7} chunks/s  {st['loop_cpu_ms_per_chunk']:>6} CPU ms/chunk"
        )
        print(
            f"  sentence-transformers, batched (32 per call):         {st['batched_s']:>7} s  "
            f"{st['batched_chunks_per_s']:>7} chunks/s  {st['batched_cpu_ms_per_chunk']:>6} CPU ms/chunk"
        )
        r = result["ratios"]
        print(
            f"  ratio ingest / ST loop: {r['ingest_vs_st_loop']}x   ingest / ST batched: "
            f"{r['ingest_vs_st_batched']}x   embedding / ST batched: {r['embed_only_vs_st_batched']}x"
        )


if __name__ == "__main__":
    main()
