"""`pilothouse flow worker`: a worker process against the configured database (SQLite here), in a subprocess:
--once drains the runnable runs and exits; SIGTERM stops it, giving its leases back; bad options are usage errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pilothouse.flows import Engine, Flow, StepContext
from pilothouse.store.engine import open_store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project
from tests.support.servers import REPO

REF = f"{Path(__file__).resolve()}:COUNTER"


class Tally(BaseModel):
    n: int
    pid: int = 0


COUNTER = Flow("tally", state=Tally)


@COUNTER.step()
def bump(state: Tally, ctx: StepContext) -> dict[str, Any]:
    return {"n": state.n + 1, "pid": os.getpid()}


COUNTER.start("bump")
COUNTER.edge("bump", Flow.END)

SLOW = Flow("slow", state=Tally)


@SLOW.step()
async def wait(state: Tally, ctx: StepContext) -> dict[str, Any]:
    await asyncio.sleep(120)
    return {"n": state.n + 1}


SLOW.start("wait")
SLOW.edge("wait", Flow.END)


def _command(data_dir: Path, url: str, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PILOTHOUSE_CONFIG", "PILOTHOUSE_DATABASE_URL")}
    cmd = [sys.executable, "-m", "pilothouse", "--data-dir", str(data_dir), "flow", "worker", "--database-url", url]
    return [*cmd, *args], env


def worker_cli(data_dir: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd, env = _command(data_dir, url, *args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=240)


def test_once_executes_the_runnable_runs_and_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flows.db'}"
    store = open_store(url)
    try:
        with store.begin() as conn:
            project = create_project(conn, "flows").id
        flows = SqlCheckpointStore(store)
        engine = Engine(flows)
        runs = [engine.start(COUNTER, {"n": n}, project_id=project, ref=REF) for n in range(3)]

        done = worker_cli(tmp_path / "data", url, "--once", "--concurrency", "2", "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["runs"] == 3 and summary["worker"]
        finished = [flows.get_run(r.id) for r in runs]
        assert [(r.status, r.state["n"]) for r in finished if r is not None] == [("succeeded", n + 1) for n in range(3)]
        assert {r.state["pid"] for r in finished if r is not None} != {os.getpid()}  # the worker process ran them
    finally:
        store.dispose()


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    bad = worker_cli(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", "--concurrency", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_sigterm_stops_the_worker_and_gives_its_lease_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flows.db'}"
    store = open_store(url)
    try:
        with store.begin() as conn:
            project = create_project(conn, "flows").id
        flows = SqlCheckpointStore(store)
        run = Engine(flows).start(SLOW, {"n": 1}, project_id=project, ref=f"{Path(__file__).resolve()}:SLOW")
        cmd, env = _command(tmp_path / "data", url, "--lease", "60", "--json")
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        try:
            deadline = time.monotonic() + 120
            held = flows.get_run(run.id)
            while held is not None and held.lease_owner is None and time.monotonic() < deadline:
                time.sleep(0.2)
                held = flows.get_run(run.id)
            assert held is not None and held.status == "running" and held.lease_owner, held
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, err
        assert json.loads(out)["stopped"] is True
        left = flows.get_run(run.id)
        assert left is not None and left.lease_owner is None and left.status == "running"  # claimable at once
        assert flows.claim("another", lease_s=5, run_id=run.id) is not None
    finally:
        store.dispose()
