"""Query at scale: N traces (default 1,000,000) with realistic distributions, then p95 of the trace list with
filters, full-text search, the cost summary and prompt stats read from rollups (and, side by side, the cost
report that reads every row), on SQLite and PostgreSQL. Target: p95 < 200 ms.

Uses its own database (a temp SQLite file; PostgreSQL database `bench_traces`, dropped afterwards):

    .venv/bin/python bench/trace_query.py --traces 1000000 --backend sqlite --backend postgresql
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from pilothouse.costs.report import ReportScope, cost_report
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.rollups import rebuild, summarise
from pilothouse.store.traces import TraceFilter, list_traces

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORDS = [
    "refund",
    "invoice",
    "password",
    "shipping",
    "delay",
    "account",
    "upgrade",
    "cancel",
    "billing",
    "login",
    "error",
    "export",
]
FILLER = ["please", "help", "me", "with", "my", "order", "thanks", "the", "a", "to", "of", "and", "in", "for", "on"]
MODELS = [("gpt-4o-mini", 0.6), ("gpt-4o", 0.25), ("claude-haiku", 0.15)]
NOW = 1_760_000_000.0
COLS = [
    "id",
    "project_id",
    "name",
    "user_id",
    "session_id",
    "tags",
    "status",
    "started_at",
    "ended_at",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "prompt_name",
    "prompt_version",
]
DAYS = 30


def _rows(n: int, project: str, rng: random.Random) -> Any:
    names = [m for m, _ in MODELS]
    weights = [w for _, w in MODELS]
    for i in range(n):
        started = NOW - rng.random() * DAYS * 86_400
        latency = rng.lognormvariate(6.2, 0.8) / 1000.0  # median ~500 ms
        tin, tout = int(rng.lognormvariate(6, 1)), int(rng.lognormvariate(5, 0.8))
        n_words = rng.randint(8, 40)
        text_ = " ".join(rng.choice(FILLER if rng.random() < 0.8 else WORDS) for _ in range(n_words))
        yield {
            "id": f"{i:032x}",
            "project_id": project,
            "name": "chat",
            "user_id": f"user-{int(rng.paretovariate(1.2)) % 5000}",
            "session_id": f"s-{i // 4}",
            "tags": '["prod"]' if rng.random() < 0.7 else '["beta"]',
            "status": "error" if rng.random() < 0.02 else "ok",
            "started_at": started,
            "ended_at": started + latency,
            "model": rng.choices(names, weights)[0],
            "input_tokens": tin,
            "output_tokens": tout,
            "cost_usd": (tin * 150 + tout * 600) * 1000,  # pico-dollars
            "prompt_name": "support" if rng.random() < 0.5 else None,
            "prompt_version": rng.choice([3, 4]),
            "doc": text_,
        }


def _load_sqlite(store: Store, project: str, n: int, rng: random.Random) -> None:
    cols = COLS
    with store.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        batch: list[dict[str, Any]] = []
        for row in _rows(n, project, rng):
            batch.append(row)
            if len(batch) == 20_000:
                _sqlite_batch(raw, cols, batch)
                batch = []
        if batch:
            _sqlite_batch(raw, cols, batch)


def _sqlite_batch(raw: Any, cols: list[str], batch: list[dict[str, Any]]) -> None:
    raw.executemany(
        f"INSERT INTO traces ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [[r[c] for c in cols] for r in batch],
    )
    raw.executemany(
        "INSERT INTO trace_search (rowid, document) SELECT rowid, ? FROM traces WHERE id = ?",
        [(r["doc"], r["id"]) for r in batch],
    )


def _load_postgres(store: Store, project: str, n: int, rng: random.Random) -> None:
    cols = COLS
    with store.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("CREATE TEMP TABLE docs (id varchar(32), doc text) ON COMMIT DROP")
            with cur.copy(f"COPY traces ({', '.join(cols)}) FROM STDIN") as traces_copy:
                docs = io.StringIO()
                for row in _rows(n, project, rng):
                    traces_copy.write_row([row[c] for c in cols])
                    docs.write(f"{row['id']}\t{row['doc']}\n")
            with cur.copy("COPY docs (id, doc) FROM STDIN") as docs_copy:
                docs_copy.write(docs.getvalue())
            cur.execute("INSERT INTO trace_search SELECT id, to_tsvector('simple', doc) FROM docs")
            cur.execute("ANALYZE")


def _p95(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def run(backend: str, n: int, runs: int) -> None:
    rng = random.Random(42)
    tmp = tempfile.TemporaryDirectory()
    if backend == "sqlite":
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS bench_traces WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE bench_traces"))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/bench_traces"
    store = open_store(url)
    try:
        with store.begin() as conn:
            project = create_project(conn, "bench").id
        t0 = time.perf_counter()
        (_load_sqlite if backend == "sqlite" else _load_postgres)(store, project, n, rng)
        t1 = time.perf_counter()
        counted = rebuild(store)
        t2 = time.perf_counter()
        print(f"{backend}: {n} traces loaded in {t1 - t0:.1f}s, rollups rebuilt ({counted}) in {t2 - t1:.1f}s")
        week = NOW - 7 * 86_400 + 123.4

        def listed(**kw: Any) -> Callable[[], object]:
            def go() -> object:
                with store.connect() as conn:
                    return list_traces(conn, TraceFilter(project_id=project, **kw), limit=50)

            return go

        def summary(**kw: Any) -> Callable[[], object]:
            def go() -> object:
                with store.connect() as conn:
                    return summarise(conn, [project], week, NOW + 1, **kw)

            return go

        def report() -> object:
            with store.connect() as conn:
                return cost_report(conn, "model", ReportScope((project,), NOW - 86_400, None))

        cases = {
            "list: model+status+since": listed(model="gpt-4o", status="error", since=week),
            "list: user+tag": listed(user_id="user-1", tag="beta"),
            "list: cost+latency range": listed(cost_min=None, latency_min_ms=3000.0, since=week),
            "search: one word": listed(q="refund"),
            "search: two words + model": listed(q="refund invoice", model="claude-haiku"),
            "cost summary 7d by model (rollups)": summary(by="model"),
            "prompt stats 7d by version (rollups)": summary(by="version", prompt_name="support"),
            "cost report 24h by model (rows)": report,
        }
        for name, fn in cases.items():
            median, p95 = _p95(fn, runs)
            flag = "ok" if p95 < 200 else "SLOW"
            print(f"  {name:42s} median {median:8.1f} ms  p95 {p95:8.1f} ms  {flag}")
    finally:
        store.dispose()
        tmp.cleanup()
        if backend == "postgresql":
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS bench_traces WITH (FORCE)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgresql"]:
        run(backend, args.traces, args.runs)


if __name__ == "__main__":
    main()
