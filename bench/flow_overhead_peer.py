"""The LangGraph side of bench/flow_overhead.py, run inside bench/.venv-langgraph (LangGraph and its SQLite and
PostgreSQL checkpointers, bench/requirements-langgraph.txt). The same graph as the Pilothouse side: STEPS nodes in
a line, each calling the same fake model (a function returning a canned chat completion), over the same state.
Prints one JSON object: per-step time with each checkpointer and without one, and checkpoint bytes per step.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict


class State(TypedDict):
    n: int
    last: str


def fake_model(prompt: str) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"ok: {prompt[:40]}"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
    }


def build(steps: int) -> Any:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)
    for i in range(steps):

        def node(state: State, i: int = i) -> dict[str, Any]:
            reply = fake_model(f"step {i}: {state['last']}")
            return {"n": state["n"] + 1, "last": reply["choices"][0]["message"]["content"]}

        graph.add_node(f"s{i}", node)
    graph.add_edge(START, "s0")
    for i in range(steps - 1):
        graph.add_edge(f"s{i}", f"s{i + 1}")
    graph.add_edge(f"s{steps - 1}", END)
    return graph


def timed(app: Any, runs: int, steps: int) -> float:
    for _ in range(2):  # warm-up
        app.invoke({"n": 0, "last": "start"}, {"configurable": {"thread_id": uuid.uuid4().hex}})
    started = time.perf_counter()
    for _ in range(runs):
        final = app.invoke({"n": 0, "last": "start"}, {"configurable": {"thread_id": uuid.uuid4().hex}})
        assert final["n"] == steps
    return (time.perf_counter() - started) / (runs * steps) * 1e6  # microseconds per step


def sqlite_bytes(path: Path, conn: sqlite3.Connection) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def pg_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND c.relname LIKE 'checkpoint%'"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL database for PostgresSaver (libpq URL)")
    args = parser.parse_args()
    from importlib.metadata import version

    out: dict[str, Any] = {"version": version("langgraph")}
    graph = build(args.steps)
    out["none_us_per_step"] = timed(graph.compile(), args.runs, args.steps)
    started = time.perf_counter()
    for _ in range(args.runs * args.steps):
        fake_model("step")
    out["bare_us_per_step"] = (time.perf_counter() - started) / (args.runs * args.steps) * 1e6

    from langgraph.checkpoint.sqlite import SqliteSaver

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lg.db"
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(conn)
        saver.setup()
        app = graph.compile(checkpointer=saver)
        before = sqlite_bytes(path, conn)
        out["sqlite_us_per_step"] = timed(app, args.runs, args.steps)
        out["sqlite_bytes_per_step"] = (sqlite_bytes(path, conn) - before) / ((args.runs + 2) * args.steps)
        conn.close()

    if args.pg_url:
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(args.pg_url) as saver:
            saver.setup()
            app = graph.compile(checkpointer=saver)
            before = pg_bytes(args.pg_url)
            out["postgresql_us_per_step"] = timed(app, args.runs, args.steps)
            out["postgresql_bytes_per_step"] = (pg_bytes(args.pg_url) - before) / ((args.runs + 2) * args.steps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
