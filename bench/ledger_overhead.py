"""What the write-ahead ledger adds to one budgeted chat request: its in-flight record, committed before the
call goes upstream (gateway/limits/ledger.py), on SQLite and PostgreSQL.

For each store it times `Ledger.open` (the request waits for the commit) with requests one after another
(`sequential`: every record is its own transaction) and with `--concurrency` requests at a time (`concurrent`:
records of concurrent requests share a group commit). The record's end costs one indexed DELETE inside the
transaction that stores the trace (no extra commit); `trace write +delete` times that trace write with the
record against one without (`trace write`).

    .venv/bin/python bench/ledger_overhead.py [--requests 2000] [--concurrency 50] \\
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from pilothouse.config import Settings
from pilothouse.gateway.limits.ledger import Ledger
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.store.engine import Store, open_store
from pilothouse.store.inflight import ReservedCounter
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink


def _trace(project: str) -> TraceRecord:
    trace = TraceRecord(project_id=project, name="chat", api_key_id="key_bench", model="bench")
    span = trace.span("llm", "chat")
    span.input_tokens, span.output_tokens = 12, 40
    span.finish()
    trace.finish()
    return trace


async def _measure(store: Store, requests: int, concurrency: int, data_dir: Path) -> dict[str, float]:
    with store.begin() as conn:
        project = create_project(conn, f"bench-{uuid.uuid4().hex[:6]}").id
    ledger = Ledger(Settings(include_default_models=False), store, MemoryLimitStore(), process="bench:1:x")
    counters = [ReservedCounter("pilothouse:budget:b:2026-01", 86_000_000, "budget", expire_at_ms=1)]
    sink = StoreSink(store, spill_path=data_dir / "spill.jsonl")
    result: dict[str, float] = {}
    try:

        async def one(trace: TraceRecord) -> float:
            start = time.perf_counter()
            await ledger.open(trace, trace.id[:16], (12, 256, 86_000_000), [("w", 268)], counters)
            return time.perf_counter() - start

        traces = [_trace(project) for _ in range(requests)]
        seq = [await one(t) for t in traces]
        result["sequential p50 µs"] = statistics.median(seq) * 1e6
        result["sequential mean µs"] = statistics.fmean(seq) * 1e6

        traces2 = [_trace(project) for _ in range(requests)]
        gate = asyncio.Semaphore(concurrency)

        async def gated(trace: TraceRecord) -> float:
            async with gate:
                return await one(trace)

        start = time.perf_counter()
        lat = await asyncio.gather(*(gated(t) for t in traces2))
        wall = time.perf_counter() - start
        result[f"concurrent({concurrency}) p50 latency µs"] = statistics.median(lat) * 1e6
        result[f"concurrent({concurrency}) wall µs / request"] = wall / requests * 1e6

        # Trace writes: with their record ending in the same transaction vs plain.
        for label, batch in (
            ("trace write +delete", traces[:500]),
            ("trace write", [_trace(project) for _ in range(500)]),
        ):
            times = []
            for t in batch:
                start = time.perf_counter()
                await sink.write(t)
                times.append(time.perf_counter() - start)
            result[f"{label} p50 µs"] = statistics.median(times) * 1e6
    finally:
        sink.close()
        await ledger.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            rows = {"SQLite": asyncio.run(_measure(sqlite, args.requests, args.concurrency, Path(tmp)))}
        finally:
            sqlite.dispose()
        name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        pg = open_store(args.pg_url.rsplit("/", 1)[0] + "/" + name)
        try:
            rows["PostgreSQL"] = asyncio.run(_measure(pg, args.requests, args.concurrency, Path(tmp)))
        finally:
            pg.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    for store, result in rows.items():
        print(f"\n{store}")
        for label, value in result.items():
            print(f"  {label:<40} {value:10.0f}")


if __name__ == "__main__":
    main()
