"""The gateway's trace writer: what storing one trace costs, per batch size, on SQLite and PostgreSQL.

A micro-benchmark of `StoreSink`'s commit (the writer thread's work for a group of requests: content capture,
rows, the merge upsert, spans, the in-flight ledger, rollups and the full-text index, one transaction), called
directly so that neither the event loop nor the HTTP path is measured. Traces are shaped like a gateway chat
call: an input guard span, a cache miss span and an llm span with messages, usage and cost.

It prints CPU time per trace: this process's, plus PostgreSQL's server processes for this database (from
/proc, when the server runs on this machine), and the wall time. To compare two versions of the code, run it
from each source tree on the same machine, e.g. `PYTHONPATH=/path/to/other/src python bench/trace_writer.py`:
the database schema is made by the code under test.

    .venv/bin/python bench/trace_writer.py --backend sqlite --backend postgresql
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from scratch_stores import scratch_store, server_cpu

QUESTION = "What is the refund policy for orders shipped abroad, and how long does it take?"
ANSWER = "Orders shipped abroad can be refunded within 30 days; the refund reaches you in 5 to 10 business days."


def gateway_trace(project_id: str, key_id: str) -> TraceRecord:
    """A chat call as the gateway records it."""
    now = time.time()
    trace = TraceRecord(project_id=project_id, name="chat", api_key_id=key_id, source="http", started_at=now)
    trace.model = "fake-chat"
    guard = trace.span("guard", "guard input pii")
    guard.attributes = {
        "pilothouse.guard.policy": "default",
        "pilothouse.guard.scanner": "pii",
        "pilothouse.guard.decision": "allow",
        "pilothouse.guard.score": 0.0,
    }
    guard.finish()
    cache = trace.span("cache", "cache lookup")
    cache.attributes = {"pilothouse.cache.hit": False, "pilothouse.cache.similarity": 0.41}
    cache.finish()
    llm = trace.span("llm", "chat fake-chat")
    llm.model, llm.provider = "fake-chat", "fake"
    llm.input_tokens, llm.output_tokens, llm.cost_usd = 31, 24, Decimal("0.0000123")
    llm.ttft_ms = 12.5
    llm.attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "fake-chat",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.id": "chatcmpl-" + secrets.token_hex(8),
        "server.address": "127.0.0.1",
    }
    llm.input = {
        "messages": [{"role": "system", "content": "You answer shop questions."}, {"role": "user", "content": QUESTION}]
    }
    llm.output = {"message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
    llm.finish()
    trace.finish()
    return trace


def measure(store: Store, label: str, traces: int, batch: int) -> None:
    with store.begin() as conn:
        project = create_project(conn, f"bench-{secrets.token_hex(3)}").id
    with tempfile.TemporaryDirectory() as folder:
        sink = StoreSink(store, spill_path=Path(folder) / "spill.jsonl")
        try:
            sink._store_all([gateway_trace(project, "key") for _ in range(batch)])  # warm: statements, caches
            groups = [[gateway_trace(project, "key") for _ in range(batch)] for _ in range(max(traces // batch, 1))]
            server = server_cpu(store)
            w, c, s = time.perf_counter(), time.process_time(), server()
            for group in groups:
                sink._store_all(group)
            wall, cpu, db = time.perf_counter() - w, time.process_time() - c, server() - s
        finally:
            sink.close()
    n = sum(len(g) for g in groups)
    assert sink.spilled == 0 and sink.lost == 0
    print(
        f"{label:<10} batch {batch:>3} | {1e6 * (cpu + db) / n:7.0f} us CPU per trace (process {1e6 * cpu / n:.0f}, "
        f"server {1e6 * db / n:.0f}) | {1e6 * wall / n:7.0f} us wall per trace | {n} traces"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--batch", type=int, action="append", help="traces per commit (default: 1 and 32)")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for backend in args.backend or ["sqlite"]:
        with scratch_store(backend, "bench_writer") as store:
            for batch in args.batch or [1, 32]:
                measure(store, backend, args.traces, batch)


if __name__ == "__main__":
    main()
