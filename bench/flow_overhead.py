"""Workflow engine overhead: per-step time (checkpoint included) and checkpoint bytes per step of Pilothouse's
durable flows on SQLite and PostgreSQL, side by side with LangGraph and its SqliteSaver / PostgresSaver on the
same STEPS-step graph with the same fake model, in one run, with ratios; storage under retention; and the
throughput of 2 workers against 1 on PostgreSQL.

    .venv/bin/python bench/flow_overhead.py                      # 20 steps, 20 runs per target, 3 rounds
    .venv/bin/python bench/flow_overhead.py --runs 5 --rounds 1 --skip-langgraph --skip-throughput   # a quick look

The overhead part runs `--rounds` times, the two frameworks interleaved in each round (so a change in the
machine's load hits both), and prints each target's median and [min..max] and the per-round ratios. The
throughput part counts runs per second over the working window (first step started to last run finished, from
the store's timestamps: worker process start-up excluded) and over the whole wall time.

LangGraph is installed into bench/.venv-langgraph from bench/requirements-langgraph.txt on first use and runs
there (bench/flow_overhead_peer.py). Both sides run a line of STEPS nodes over the state {n, last}, each node
calling a function that returns a canned chat completion; Pilothouse tracing is off (no span sink), as
LangGraph's is. Per-step overhead is a framework's time per step minus the bare fake-model call's.
Bytes per step: the growth of the SQLite file (after a WAL checkpoint) or of the PostgreSQL tables' total size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from pilothouse.flows.context import StepContext
from pilothouse.flows.engine import Engine
from pilothouse.flows.graph import Flow
from pilothouse.flows.worker import Worker
from pilothouse.store.engine import Store, open_store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project
from scratch_stores import scratch_store

BENCH_DIR = Path(__file__).resolve().parent
STEPS = int(os.environ.get("FLOW_BENCH_STEPS", "20"))
LATENCY_S = float(os.environ.get("FLOW_BENCH_LATENCY_MS", "0")) / 1000


class State(BaseModel):
    n: int = 0
    last: str = "start"


def fake_model(prompt: str) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"ok: {prompt[:40]}"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
    }


def build_flow(steps: int) -> Flow:
    built = Flow("bench", state=State, budget={"steps": steps + 5})
    for i in range(steps):

        async def node(state: State, ctx: StepContext, i: int = i) -> dict[str, Any]:
            if LATENCY_S:
                await asyncio.sleep(LATENCY_S)  # a model's latency, for the throughput part
            reply = fake_model(f"step {i}: {state.last}")
            return {"n": state.n + 1, "last": reply["choices"][0]["message"]["content"]}

        built.step(f"s{i}")(node)
    built.start("s0")
    for i in range(steps - 1):
        built.edge(f"s{i}", f"s{i + 1}")
    built.edge(f"s{steps - 1}", Flow.END)
    return built.build()


flow = build_flow(STEPS)
REF = f"{Path(__file__).resolve()}:flow"


def storage_bytes(store: Store) -> int:
    with store.connect() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return Path(str(store.engine.url.database)).stat().st_size
        query = "SELECT coalesce(sum(pg_total_relation_size(t)), 0) FROM unnest(ARRAY[{}]) AS t"
        names = ",".join(f"'{t}'::regclass" for t in ("flow_runs", "flow_checkpoints", "flow_effects"))
        return int(conn.execute(text(query.format(names))).scalar() or 0)


async def one_run(engine: Engine, project: str) -> None:
    run = engine.start(flow, {}, project_id=project, ref=REF)
    done = await engine.run(flow, run.id)
    assert done.status == "succeeded" and done.state["n"] == STEPS, done.error


def pilothouse_side(backend: str, runs: int) -> dict[str, float]:
    with scratch_store(backend, "flowbench") as store:
        with store.begin() as conn:
            project = create_project(conn, "bench").id
        checkpoints = SqlCheckpointStore(store)
        engine = Engine(checkpoints, lease_s=60)
        for _ in range(2):  # warm-up
            asyncio.run(one_run(engine, project))
        before = storage_bytes(store)

        async def timed() -> float:
            started = time.perf_counter()
            for _ in range(runs):
                await one_run(engine, project)
            return time.perf_counter() - started

        elapsed = asyncio.run(timed())
        grown = storage_bytes(store) - before
        return {"us_per_step": elapsed / (runs * STEPS) * 1e6, "bytes_per_step": grown / (runs * STEPS)}


def retention(backend: str, batches: int, per_batch: int) -> dict[str, list[tuple[int, int]]]:
    """(rows, bytes) of the flow tables after each batch of runs: never pruned, or pruned after each batch as an
    operator's retention would (each finished run keeps its last checkpoint; runs finished before the batch
    started, the "older than N days" of the example, are deleted)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for mode in ("none", "prune"):
        with scratch_store(backend, "flowret") as store:
            with store.begin() as conn:
                project = create_project(conn, "bench").id
            checkpoints = SqlCheckpointStore(store)
            engine = Engine(checkpoints, lease_s=60)
            sizes = []
            for _ in range(batches):
                started = time.time()
                for _ in range(per_batch):
                    asyncio.run(one_run(engine, project))
                if mode == "prune":
                    checkpoints.prune(keep_last=1, older_than_s=time.time() - started)
                sizes.append((sum(checkpoints.storage().values()), storage_bytes(store)))
            out[mode] = sizes
    return out


def throughput(runs: int, workers: int, concurrency: int) -> dict[str, float]:
    """Runs per second of `workers` worker processes draining `runs` queued runs on PostgreSQL: over the working
    window (first step started to last run finished, from the checkpoints' times: process start-up excluded) and
    over the whole wall time (start-up included)."""
    with scratch_store("postgresql", "flowtput") as store:
        with store.begin() as conn:
            project = create_project(conn, "bench").id
        checkpoints = SqlCheckpointStore(store)
        engine = Engine(checkpoints)
        ids = [engine.start(flow, {}, project_id=project, ref=REF).id for _ in range(runs)]
        url = store.engine.url.render_as_string(hide_password=False)
        cmd = [sys.executable, __file__, "--worker", url, project, "--concurrency", str(concurrency)]
        started = time.perf_counter()
        procs = [subprocess.Popen(cmd, env=os.environ.copy()) for _ in range(workers)]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"a worker exited with {proc.returncode}")
        elapsed = time.perf_counter() - started
        done = checkpoints.list_runs(project, status="succeeded", limit=runs + 1)
        assert len(done) == runs, f"{len(done)} of {runs} runs succeeded"
        first = min(checkpoints.checkpoints(i, after_seq=0)[0].started_at for i in ids)
        last = max(r.updated_at for r in done)
        return {"working": runs / (last - first), "wall": runs / elapsed}


def worker_main(url: str, project: str, concurrency: int) -> None:
    """One worker process: serve until no run of `project` is queued or running."""
    store = open_store(url)
    checkpoints = SqlCheckpointStore(store)
    worker = Worker(checkpoints, Engine(checkpoints, lease_s=30), concurrency=concurrency, poll_s=0.05)

    async def serve() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(worker.serve(stop))
        while True:
            await asyncio.sleep(0.1)
            busy = [
                r
                for status in ("queued", "running")
                for r in await asyncio.to_thread(checkpoints.list_runs, project, status=status, limit=1)
            ]
            if not busy:
                break
        stop.set()
        await serving

    asyncio.run(serve())
    store.dispose()


def langgraph_side(runs: int, skip_pg: bool) -> dict[str, Any]:
    venv = BENCH_DIR / ".venv-langgraph"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} for LangGraph (first use only)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "-r", str(BENCH_DIR / "requirements-langgraph.txt")]
        subprocess.run(pip, check=True)
    cmd = [str(python), str(BENCH_DIR / "flow_overhead_peer.py"), "--steps", str(STEPS), "--runs", str(runs)]
    if skip_pg:
        return dict(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    with scratch_store("postgresql", "lgbench") as store:
        url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        result = subprocess.run([*cmd, "--pg-url", url], check=True, capture_output=True, text=True)
    return dict(json.loads(result.stdout))


def bare_us_per_step(calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fake_model("step")
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per target (after 2 warm-up runs)")
    parser.add_argument("--skip-langgraph", action="store_true", help="Pilothouse only (no LangGraph venv)")
    parser.add_argument("--skip-postgresql", action="store_true", help="SQLite only")
    parser.add_argument("--skip-throughput", action="store_true", help="no 2-vs-1 worker throughput part")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the overhead part (median and spread)")
    parser.add_argument("--throughput-runs", type=int, default=120)
    parser.add_argument("--throughput-rounds", type=int, default=1)
    parser.add_argument("--retention-batches", type=int, default=5)
    parser.add_argument("--worker", nargs=2, metavar=("URL", "PROJECT"), help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once per worker (throughput part)")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker[0], args.worker[1], args.concurrency)
        return
    backends = ["sqlite"] if args.skip_postgresql else ["sqlite", "postgresql"]
    bare = bare_us_per_step(args.runs * STEPS)
    rounds: list[dict[str, float]] = []  # per round: each target's overhead us/step and bytes/step
    version = None
    for number in range(args.rounds):  # rounds interleave the two frameworks, so load changes hit both
        found: dict[str, float] = {}
        for backend in backends:
            mine = pilothouse_side(backend, args.runs)
            found[f"pilothouse-{backend}"] = mine["us_per_step"] - bare
            found[f"pilothouse-{backend}-bytes"] = mine["bytes_per_step"]
        if not args.skip_langgraph:
            theirs = langgraph_side(args.runs, args.skip_postgresql)
            version = theirs.get("version")
            found["langgraph-none"] = theirs["none_us_per_step"] - theirs["bare_us_per_step"]
            for backend in backends:
                found[f"langgraph-{backend}"] = theirs[f"{backend}_us_per_step"] - theirs["bare_us_per_step"]
                found[f"langgraph-{backend}-bytes"] = theirs[f"{backend}_bytes_per_step"]
                found[f"ratio-{backend}"] = found[f"pilothouse-{backend}"] / max(found[f"langgraph-{backend}"], 1e-9)
        rounds.append(found)
        print(f"# round {number + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in found.items()), flush=True)
    print(
        f"# {STEPS}-step graph, fake model, {args.runs} timed runs per target per round, {args.rounds} rounds; "
        f"bare model call {bare:.1f} us; overhead = us/step minus the bare call"
    )
    print("target\toverhead us/step median [min..max]\tbytes/step")
    names = [f"pilothouse-{b}" for b in backends]
    if not args.skip_langgraph:
        names += ["langgraph-none"] + [f"langgraph-{b}" for b in backends]
    for name in names:
        values = [r[name] for r in rounds]
        size = rounds[-1].get(f"{name}-bytes", 0.0)
        print(f"{name}\t{median(values):.1f} [{min(values):.1f}..{max(values):.1f}]\t{size:.0f}")
    if not args.skip_langgraph:
        for backend in backends:
            ratios = [r[f"ratio-{backend}"] for r in rounds]
            mine_b = rounds[-1][f"pilothouse-{backend}-bytes"] / max(rounds[-1][f"langgraph-{backend}-bytes"], 1)
            print(
                f"ratio {backend}: pilothouse/langgraph overhead median {median(ratios):.2f} "
                f"[{min(ratios):.2f}..{max(ratios):.2f}] per round (target <= 0.5), bytes {mine_b:.2f}"
            )
        print(f"# langgraph {version}")
    kept = retention("sqlite", args.retention_batches, max(2, args.runs // 4))
    print(f"retention (sqlite, (rows, bytes) after each batch): none {kept['none']}")
    print(f"retention (sqlite, (rows, bytes) after each batch): pruned {kept['prune']}")
    if not args.skip_throughput and not args.skip_postgresql:
        os.environ["FLOW_BENCH_LATENCY_MS"] = os.environ.get("FLOW_BENCH_LATENCY_MS", "5")
        latency = os.environ["FLOW_BENCH_LATENCY_MS"]
        for number in range(args.throughput_rounds):
            one = throughput(args.throughput_runs, 1, args.concurrency)
            two = throughput(args.throughput_runs, 2, args.concurrency)
            print(
                f"throughput (postgresql, {args.throughput_runs} runs, {latency} ms model latency, concurrency "
                f"{args.concurrency}) round {number + 1}: working window 1 worker {one['working']:.2f} runs/s, "
                f"2 workers {two['working']:.2f} (ratio {two['working'] / one['working']:.2f}); wall with "
                f"process start-up 1 worker {one['wall']:.2f}, 2 workers {two['wall']:.2f} "
                f"(ratio {two['wall'] / one['wall']:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
