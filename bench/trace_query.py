"""Query at scale: N traces (default 1,000,000) with their spans, scores, rollups and full-text rows, then the
median and p95 of the trace list with each filter, full-text search, the cost report and prompt stats, on SQLite
and PostgreSQL. Target (issue 13): p95 < 200 ms.

The data is bulk-inserted straight into the tables (the sink's per-request path is measured by
bench/otlp_ingest.py): traces spread over 30 days in time order, one `llm` span each (a `cache` span for cache
hits, a `guard` span for some), a groundedness score on one trace in ten, the rollups counted by
`store.rollups.add_traces` (the sink's own counter code), the score counters (`store.score_rollups`) and the
search rows as the sink writes them. Generated
databases are kept for reruns: the SQLite file under /tmp (`--cache-dir`), the PostgreSQL database
`bench_traces_<N>` (dropped with `--drop`); a rerun with the same N and seed reuses them.

    .venv/bin/python bench/trace_query.py --traces 1000000 --backend sqlite --backend postgresql
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from pilothouse.costs.report import ReportScope, cost_report
from pilothouse.prompts.rollout.performance import prompt_performance
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.rollups import add_traces
from pilothouse.store.score_rollups import rebuild as rebuild_scores
from pilothouse.store.traces import ScoreFilter, TraceFilter, list_traces

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATA_VERSION = "5"  # bump when the generated data changes, so cached databases are rebuilt
COMMON = ["please", "help", "me", "with", "my", "order", "thanks", "the", "a", "to", "of", "and", "in", "for", "on"]
TOPICS = ["refund", "invoice", "password", "shipping", "delay", "account", "upgrade", "cancel", "billing", "login"]
RARE = ["lighthouse", "quarantine", "zeppelin", "marmalade"]  # about one trace in 5,000 each
MODELS = [("gpt-4o-mini", 0.6, 150, 600), ("gpt-4o", 0.25, 2500, 10000), ("claude-haiku", 0.15, 800, 4000)]
KEYS = ["key-web", "key-batch"]
NOW = 1_760_000_000.0
DAYS = 30
BATCH = 20_000
TRACE_COLS = [
    "id",
    "project_id",
    "api_key_id",
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
    "source",
]
SPAN_COLS = [
    "id",
    "trace_id",
    "project_id",
    "kind",
    "name",
    "status",
    "started_at",
    "ended_at",
    "latency_ms",
    "ttft_ms",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "usage_estimated",
    "cost_usd",
    "attributes",
    "input",
    "output",
]
SCORE_COLS = ["id", "project_id", "trace_id", "name", "value", "source", "created_at", "data_type"]
JSON_COLS = {"tags", "attributes", "input", "output"}


@dataclass
class Batch:
    traces: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    docs: list[tuple[str, str]]


def _batches(n: int, project: str, seed: int) -> Iterator[Batch]:
    """Traces in time order (so each batch's rollup buckets barely overlap the next one's)."""
    rng = random.Random(seed)
    names = [m[0] for m in MODELS]
    weights = [m[1] for m in MODELS]
    price = {m[0]: (m[2], m[3]) for m in MODELS}
    step = DAYS * 86_400 / n
    batch = Batch([], [], [], [])
    for i in range(n):
        started = NOW - DAYS * 86_400 + i * step + rng.random() * step
        trace_id = f"{i:032x}"
        status = "error" if rng.random() < 0.02 else "ok"
        latency_s = rng.lognormvariate(6.2, 0.8) / 1000.0  # median ~500 ms, a long tail
        model = rng.choices(names, weights)[0]
        tin, tout = int(rng.lognormvariate(6, 1)) + 1, int(rng.lognormvariate(5, 0.8)) + 1
        cached = status == "ok" and rng.random() < 0.08
        p_in, p_out = price[model]
        cost = 0 if cached else (tin * p_in + tout * p_out) * 1000  # pico-dollars
        prompt = rng.random() < 0.5
        words = [rng.choice(COMMON if rng.random() < 0.8 else TOPICS) for _ in range(rng.randint(8, 40))]
        if rng.random() < 0.0008:
            words.append(rng.choice(RARE))
        question = " ".join(words)
        answer = " ".join(rng.choice(COMMON) for _ in range(12))
        tags = ["prod"] if rng.random() < 0.9 else (["beta"] if rng.random() < 0.9 else ["beta", "vip"])
        batch.traces.append(
            {
                "id": trace_id,
                "project_id": project,
                "api_key_id": KEYS[0] if rng.random() < 0.7 else KEYS[1],
                "name": "chat",
                "user_id": f"user-{int(rng.paretovariate(1.2)) % 5000}",
                "session_id": f"s-{i // 4}",
                "tags": tags,
                "status": status,
                "started_at": started,
                "ended_at": started + latency_s,
                "model": model,
                "input_tokens": 0 if cached else tin,
                "output_tokens": 0 if cached else tout,
                "cost_usd": cost,
                "prompt_name": "support" if prompt else None,
                "prompt_version": (3 if rng.random() < 0.5 else 4) if prompt else None,
                "source": "http",
            }
        )
        span: dict[str, Any] = {
            "id": f"{i:016x}",
            "trace_id": trace_id,
            "project_id": project,
            "name": "chat",
            "status": status,
            "started_at": started,
            "ended_at": started + latency_s,
            "latency_ms": latency_s * 1000.0,
            "model": model,
            "input": {"messages": [{"role": "user", "content": question}]},
            "output": {"message": {"role": "assistant", "content": answer}},
        }
        if cached:
            saved = Decimal((tin * p_in + tout * p_out) * 1000) / Decimal(10**12)
            span |= {"kind": "cache", "provider": None, "input_tokens": None, "output_tokens": None}
            span |= {"ttft_ms": None, "cost_usd": None, "attributes": {"pilothouse.cache_saved_usd": str(saved)}}
        else:
            streamed = rng.random() < 0.6
            span |= {"kind": "llm", "provider": "openai", "input_tokens": tin, "output_tokens": tout}
            span |= {"ttft_ms": latency_s * 250.0 if streamed else None, "cost_usd": cost, "attributes": {}}
        span["usage_estimated"] = False
        batch.spans.append(span)
        if rng.random() < 0.03:
            blocked = rng.random() < 0.3
            batch.spans.append(
                span
                | {
                    "id": f"g{i:015x}",
                    "kind": "guard",
                    "name": "input_guard",
                    "model": None,
                    "cost_usd": None,
                    "attributes": {"pilothouse.guard.decision": "block" if blocked else "allow"},
                    "input": None,
                    "output": None,
                }
            )
        if rng.random() < 0.1:
            batch.scores.append(
                {
                    "id": f"sc{i:030x}",
                    "project_id": project,
                    "trace_id": trace_id,
                    "name": "groundedness",
                    "value": round(rng.betavariate(5, 2), 4),
                    "source": "judge",
                    "created_at": started + 5.0,
                    "data_type": "numeric",
                }
            )
        batch.docs.append((trace_id, f"{question}\n{answer}"))
        if len(batch.traces) == BATCH:
            yield batch
            batch = Batch([], [], [], [])
    if batch.traces:
        yield batch


def _cell(col: str, value: Any) -> Any:
    return json.dumps(value) if col in JSON_COLS and value is not None else value


def _load_sqlite(store: Store, project: str, n: int, seed: int) -> None:
    with store.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        for b in _batches(n, project, seed):
            for table, cols, rows in (("traces", TRACE_COLS, b.traces), ("spans", SPAN_COLS, b.spans)):
                raw.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [[_cell(c, r[c]) for c in cols] for r in rows],
                )
            raw.executemany(
                f"INSERT INTO scores ({', '.join(SCORE_COLS)}) VALUES ({', '.join('?' * len(SCORE_COLS))})",
                [[r[c] for c in SCORE_COLS] for r in b.scores],
            )
            raw.executemany(
                "INSERT INTO trace_search (rowid, document) SELECT rowid, ? FROM traces WHERE id = ?",
                [(doc, trace_id) for trace_id, doc in b.docs],
            )
            add_traces(conn, b.traces, b.spans)
        rebuild_scores(conn)  # the score counters, as `add_score` keeps them
    with store.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _load_postgres(store: Store, project: str, n: int, seed: int) -> None:
    with store.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("CREATE TEMP TABLE docs (id varchar(32), doc text) ON COMMIT DROP")
            for b in _batches(n, project, seed):
                for table, cols, rows in (
                    ("traces", TRACE_COLS, b.traces),
                    ("spans", SPAN_COLS, b.spans),
                    ("scores", SCORE_COLS, b.scores),
                ):
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row([_cell(c, r[c]) for c in cols])
                docs = io.StringIO()
                for trace_id, doc in b.docs:
                    docs.write(f"{trace_id}\t{doc.replace(chr(10), ' ')}\n")
                with cur.copy("COPY docs (id, doc) FROM STDIN") as copy:
                    copy.write(docs.getvalue())
                add_traces(conn, b.traces, b.spans)
            cur.execute("INSERT INTO trace_search SELECT id, to_tsvector('simple', doc) FROM docs")
        rebuild_scores(conn)  # the score counters, as `add_score` keeps them
    with store.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def _stats(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm the caches and prepared statements
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def _open(backend: str, n: int, seed: int, cache_dir: Path, fresh: bool) -> tuple[Store, str, bool]:
    """The store (reused when a previous run generated the same data) and its project; True when loaded now."""
    tag = f"{n}_{seed}_v{DATA_VERSION}"
    if backend == "sqlite":
        path = cache_dir / f"pilothouse_bench_traces_{tag}.db"
        if fresh and path.exists():
            for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                extra.unlink(missing_ok=True)
        exists = path.exists()
        store = open_store(f"sqlite:///{path}")
    else:
        name = f"bench_traces_{tag}"
        admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if fresh:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None
            if not exists:
                conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        store = open_store(f"{PG_SERVER}/{name}")
    with store.connect() as conn:
        found = conn.execute(text("SELECT id FROM projects WHERE name = 'bench'")).scalar()
        done = found is not None and conn.execute(text("SELECT count(*) FROM traces")).scalar() == n
    if done:
        return store, str(found), False
    if found is not None:  # a run that died while loading: start again
        store.dispose()
        return _open(backend, n, seed, cache_dir, True)
    with store.begin() as conn:
        project = create_project(conn, "bench").id
    (_load_sqlite if backend == "sqlite" else _load_postgres)(store, project, n, seed)
    return store, project, True


def _cases(store: Store, project: str) -> dict[str, Callable[[], object]]:
    week, day = NOW - 7 * 86_400 + 123.4, NOW - 86_400 + 56.7  # windows not aligned to hours or minutes

    def listed(**kw: Any) -> Callable[[], object]:
        def go() -> object:
            with store.connect() as conn:
                page, _ = list_traces(conn, TraceFilter(project_id=project, **kw), limit=50)
                return page

        return go

    def report(by: str, since: float) -> Callable[[], object]:
        def go() -> object:
            with store.connect() as conn:
                return cost_report(conn, by, ReportScope((project,), since, NOW + 1))

        return go

    def stats(since: float) -> Callable[[], object]:
        def go() -> object:
            with store.connect() as conn:
                return prompt_performance(conn, project, "support", since=since, until=NOW + 1)

        return go

    return {
        "list: newest page": listed(),
        "list: since 7d + model + status=error": listed(model="gpt-4o", status="error", since=week),
        "list: prompt support v4": listed(prompt_name="support", prompt_version=4),
        "list: user": listed(user_id="user-7"),
        "list: session": listed(session_id="s-123456"),
        "list: tag vip (0.9%)": listed(tag="vip"),
        "list: cost >= $0.05": listed(cost_min=Decimal("0.05")),
        "list: latency >= 8 s": listed(latency_min_ms=8000.0),
        "list: score groundedness<0.3": listed(score=ScoreFilter.parse("groundedness<0.3")),
        "list: source + since 24h": listed(source="http", since=day),
        "search: common word": listed(q="refund"),
        "search: rare word": listed(q="lighthouse"),
        "search: two words + model": listed(q="refund invoice", model="claude-haiku"),
        "cost report 24h by model": report("model", day),
        "cost report 7d by model": report("model", week),
        "cost report 30d by key": report("key", NOW - 30 * 86_400),
        "prompt stats 7d": stats(week),
        "prompt stats 30d": stats(NOW - 30 * 86_400),
    }


def run(
    backend: str, n: int, runs: int, seed: int, cache_dir: Path, *, fresh: bool, drop: bool, only: str | None
) -> None:
    t0 = time.perf_counter()
    store, project, loaded = _open(backend, n, seed, cache_dir, fresh)
    took = time.perf_counter() - t0
    print(f"{backend}: {n:,} traces " + (f"generated and loaded in {took:.0f} s" if loaded else "(cached database)"))
    slow = 0
    cases = {k: v for k, v in _cases(store, project).items() if only is None or only in k}
    try:
        for name, fn in cases.items():
            median, p95 = _stats(fn, runs)
            slow += p95 >= 200
            print(f"  {name:40s} median {median:8.1f} ms  p95 {p95:8.1f} ms  {'ok' if p95 < 200 else 'SLOW'}")
    finally:
        url = store.engine.url
        store.dispose()
        if drop and backend == "postgresql":
            admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)"))
            admin.dispose()
    print(f"  {slow} of {len(cases)} over the 200 ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--fresh", action="store_true", help="generate the data again even if cached")
    parser.add_argument("--drop", action="store_true", help="drop the PostgreSQL database afterwards")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgresql"]:
        run(
            backend,
            args.traces,
            args.runs,
            args.seed,
            args.cache_dir,
            fresh=args.fresh,
            drop=args.drop,
            only=args.only,
        )


if __name__ == "__main__":
    main()
