"""Durability: workers SIGKILLed at random points (inside checkpoint writes included) and then resumed finish
every run with the state of an uninterrupted run, no step lost, and the side-effecting tool charged exactly once
per logical call; two workers on one PostgreSQL never both execute a step, and a dead worker's runs are taken
over once its lease expires."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pilothouse.flows.engine import Engine
from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.flows.protocol import Checkpoint
from pilothouse.flows.tools_runtime import ToolRuntime
from pilothouse.store.engine import Store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project
from tests.flows.durability.crash_flow import flow
from tests.support.servers import REPO

REF = f"{REPO / 'tests/flows/durability/crash_flow.py'}:flow"
INPUTS: list[dict[str, Any]] = [
    {"items": [1, 2, 3, 4], "express": True},
    {"items": [5, 6, 7], "express": False},
    {"items": [8, 9], "express": True},
    {"items": [10, 11, 12, 13, 14], "express": False},
]
SEED = int(os.environ.get("PILOTHOUSE_CRASH_SEED", "16"))


def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, Any], list[tuple[str, int]]]]:
    """Each input's final state and recorded steps, uninterrupted (in memory, in this process)."""
    monkeypatch.setenv("CRASH_LEDGER", str(tmp_path / "reference-ledger.tsv"))
    store = MemoryCheckpointStore()
    engine = Engine(store, tools=ToolRuntime())
    out = []
    for body in INPUTS:
        run = engine.start(flow, body, project_id="reference")
        done = asyncio.run(engine.run(flow, run.id))
        assert done.status == "succeeded", done.error
        out.append(
            (
                done.state,
                steps_of(store.checkpoints(run.id)),
            )
        )
    return out


def steps_of(checkpoints: list[Checkpoint]) -> list[tuple[str, int]]:
    return sorted((c.step, -1 if c.item is None else c.item) for c in checkpoints)


def queue_runs(store: Store) -> tuple[SqlCheckpointStore, str, list[str]]:
    checkpoints = SqlCheckpointStore(store)
    with store.begin() as conn:
        project = create_project(conn, "crash").id
    engine = Engine(checkpoints)
    ids = [engine.start(flow, body, project_id=project, ref=REF).id for body in INPUTS]
    return checkpoints, project, ids


def worker(url: str, project: str, env: dict[str, str], kill_at: int = 0) -> subprocess.Popen[str]:
    full = {**os.environ, **env, "CRASH_KILL_AT_COMMIT": str(kill_at)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flows.durability.crash_worker", url, project],
        cwd=REPO,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ledger_lines(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def check_finished(checkpoints: SqlCheckpointStore, ids: list[str], expected: list[Any], ledger: Path) -> None:
    paid = Counter(key.split("/")[0] for key, _ in ledger_lines(ledger))
    for run_id, (state, steps) in zip(ids, expected, strict=True):
        run = checkpoints.get_run(run_id)
        assert run is not None and run.status == "succeeded", run
        assert run.state == state  # the same as an uninterrupted run's
        recorded = checkpoints.checkpoints(run_id)
        assert [c.seq for c in recorded] == list(range(1, len(recorded) + 1))
        assert steps_of(recorded) == steps  # no step lost, none recorded twice
        assert paid[run_id] == 1  # the side effect happened once per logical call


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_workers_killed_at_random_points_then_resumed_finish_as_if_never_killed(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = reference(tmp_path, monkeypatch)
    checkpoints, project, ids = queue_runs(store)
    url = str(store.engine.url.render_as_string(hide_password=False))
    ledger = tmp_path / "ledger.tsv"
    env = {"CRASH_LEDGER": str(ledger), "CRASH_LEASE_S": "0.6"}
    rng = random.Random(SEED)
    kills, points = 0, []
    for _ in range(12):
        point = rng.randint(2, 14) if kills < 6 else 0  # each process dies within its first 14 commits
        proc = worker(url, project, env, point)
        out, _ = proc.communicate(timeout=120)
        if proc.returncode == -9:
            kills += 1
            points.append(point)
            continue
        assert proc.returncode == 0, out
        break
    assert kills >= 4, f"killed at commits {points} only"
    check_finished(checkpoints, ids, expected, ledger)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_workers_share_postgresql_and_take_over_a_dead_ones_runs(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = reference(tmp_path, monkeypatch)
    url = str(store.engine.url.render_as_string(hide_password=False))
    # Two live workers: every step is executed by exactly one of them.
    checkpoints, project, ids = queue_runs(store)
    ledger, log = tmp_path / "ledger.tsv", tmp_path / "executed.tsv"
    env = {"CRASH_LEDGER": str(ledger), "CRASH_LEASE_S": "2", "CRASH_EXEC_LOG": str(log)}
    procs = [worker(url, project, env) for _ in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    check_finished(checkpoints, ids, expected, ledger)
    executions = [tuple(line[:3]) for line in ledger_lines(log)]
    assert len(executions) == len(set(executions))  # no step executed twice
    # A worker killed mid-run loses its lease; the other one finishes its runs.
    with store.begin() as conn:
        project = create_project(conn, "crash-takeover").id
    engine = Engine(checkpoints)
    more = [engine.start(flow, body, project_id=project, ref=REF).id for body in INPUTS]
    env = {**env, "CRASH_LEASE_S": "0.6", "CRASH_EXEC_LOG": ""}
    doomed = worker(url, project, env, kill_at=8)
    doomed.communicate(timeout=120)
    assert doomed.returncode == -9
    held = [r for r in checkpoints.list_runs(project) if r.status == "running" and r.lease_owner]
    assert held and all(r.lease_owner == f"crash-{doomed.pid}" for r in held)  # it died holding runs
    survivor = worker(url, project, env)
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, out
    check_finished(checkpoints, more, expected, ledger)
