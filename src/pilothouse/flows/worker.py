"""A worker: claims runnable runs from the store and executes them with the engine, several at a time.

    worker = Worker(store, Engine(store, models=..., tools=..., tracer=...), concurrency=4)
    await worker.serve(stop)        # until `stop` is set; `worker.wake()` makes it look for work at once

Any number of workers, in one process or many, on one machine or several, share a store: `claim` hands each
runnable run to one worker (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite's write lock), the engine renews the
lease while the run executes, and a worker that dies stops renewing, so its runs become claimable again once
their lease expires and another worker continues them from their last checkpoint. A run's flow is loaded from
the reference it was started with (flows/loading.py); a reference that no longer loads fails the run with the
loader's message instead of leaving it to be claimed forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from pilothouse.flows.engine import Engine
from pilothouse.flows.loading import FlowLoadError, load_flow, root_ref
from pilothouse.flows.protocol import CheckpointStore, LeaseLost, RunRecord

__all__ = ["Worker"]

log = logging.getLogger("pilothouse.flows")


class Worker:
    """Executes the store's runnable runs (see the module docstring)."""

    def __init__(
        self,
        store: CheckpointStore,
        engine: Engine,
        *,
        concurrency: int = 4,
        poll_s: float = 1.0,
        project_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        self.store = store
        self.engine = engine
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.project_id = project_id
        self._active: dict[asyncio.Task[RunRecord | None], str] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.engine.worker

    def wake(self) -> None:
        """Look for work now (safe from any thread; a no-op before `serve` starts)."""
        with self._lock:
            loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def run_once(self, run_id: str | None = None) -> RunRecord | None:
        """Claim one runnable run (that one, when given) and execute it until it finishes, waits or is lost;
        None when there was nothing to claim."""
        run = await asyncio.to_thread(
            self.store.claim, self.name, lease_s=self.engine.lease_s, run_id=run_id, project_id=self.project_id
        )
        if run is None:
            return None
        return await self._execute(run)

    async def _execute(self, run: RunRecord) -> RunRecord:
        try:
            # a sub-flow's run is `<root ref>#step`: load the root; Engine.execute finds the child in it
            flow = await asyncio.to_thread(load_flow, root_ref(run.flow))
        except FlowLoadError as exc:
            log.warning("run %s: %s", run.id, exc)
            return await asyncio.to_thread(self._fail, run, exc)
        try:
            return await self.engine.execute(flow, run)
        except LeaseLost:
            log.warning("run %s was taken over by another worker; %s lets it go", run.id, self.name)
            return run

    def _fail(self, run: RunRecord, exc: FlowLoadError) -> RunRecord:
        error = {"step": None, "cause": type(exc).__name__, "message": str(exc), "state": run.state}
        return self.store.commit_step(
            run.id,
            self.name,
            [],
            state=run.state,
            next_steps=run.next_steps,
            status="failed",
            spent=run.spent,
            error=error,
        )

    async def drain(self) -> int:
        """Execute runnable runs until none is left (up to `concurrency` at once); returns how many ran."""
        done = 0
        while True:
            batch = [asyncio.create_task(self.run_once()) for _ in range(self.concurrency)]
            results = await asyncio.gather(*batch)
            ran = sum(1 for r in results if r is not None)
            done += ran
            if ran < self.concurrency:
                return done

    async def serve(self, stop: asyncio.Event) -> None:
        """Claim and execute runs until `stop` is set, then wait for the runs in progress to end."""
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
        wake = self._wake
        try:
            while not stop.is_set():
                wake.clear()
                while len(self._active) < self.concurrency and not stop.is_set():
                    try:
                        run = await asyncio.to_thread(
                            self.store.claim, self.name, lease_s=self.engine.lease_s, project_id=self.project_id
                        )
                    except Exception:
                        log.exception("worker %s could not claim a run; trying again in %ss", self.name, self.poll_s)
                        break
                    if run is None:
                        break
                    task = asyncio.create_task(self._guarded(run), name=f"flow run {run.id}")
                    self._active[task] = run.id
                    task.add_done_callback(self._finished)
                waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
                await asyncio.wait(waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            # Stopping is a clean crash: the runs in progress stop where they are (their last checkpoint
            # stands) and their leases are given up, so another worker continues them at once.
            running = dict(self._active)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for run_id in running.values():
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.release, run_id, self.name)
            with self._lock:
                self._loop = self._wake = None

    def _finished(self, task: asyncio.Task[RunRecord | None]) -> None:
        self._active.pop(task, None)
        if self._wake is not None:
            self._wake.set()  # a slot is free

    async def _guarded(self, run: RunRecord) -> RunRecord | None:
        try:
            return await self._execute(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker %s: run %s ended with an unexpected error", self.name, run.id)
            return None
