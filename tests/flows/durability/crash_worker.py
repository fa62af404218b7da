"""A flow worker process for the durability tests: `python -m tests.flows.durability.crash_worker URL PROJECT`.

It executes the project's runs until every one of them is finished, then exits 0. With
`CRASH_KILL_AT_COMMIT=N` it SIGKILLs itself just before the N-th database commit it makes (a claim, a lease
renewal, a checkpoint, an effect record): wherever that falls, inside a checkpoint write included, the
transaction is left uncommitted, as when a machine dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from sqlalchemy import event

from pilothouse.flows.engine import Engine
from pilothouse.flows.protocol import TERMINAL
from pilothouse.flows.tools_runtime import ToolRuntime
from pilothouse.flows.worker import Worker
from pilothouse.store.engine import open_store
from pilothouse.store.flows import SqlCheckpointStore

LEASE_S = float(os.environ.get("CRASH_LEASE_S", "1.0"))


def kill_at_commit(engine: Any, n: int) -> None:
    commits = 0

    def before_commit(conn: Any) -> None:
        nonlocal commits
        commits += 1
        if commits == n:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(engine, "commit", before_commit)


async def work(store: SqlCheckpointStore, project: str) -> None:
    engine = Engine(store, worker=f"crash-{os.getpid()}", lease_s=LEASE_S, tools=ToolRuntime())
    worker = Worker(store, engine, concurrency=2, poll_s=0.05)
    while True:
        await worker.drain()
        runs = store.list_runs(project, limit=500)
        if all(r.status in TERMINAL for r in runs):
            return
        await asyncio.sleep(0.1)  # a run held by a live (or dead, until its lease expires) worker


def main() -> None:
    url, project = sys.argv[1], sys.argv[2]
    store = open_store(url)
    kill_at = int(os.environ.get("CRASH_KILL_AT_COMMIT", "0"))
    if kill_at:
        kill_at_commit(store.engine, kill_at)
    asyncio.run(work(SqlCheckpointStore(store), project))
    store.dispose()


if __name__ == "__main__":
    main()
