"""`pilothouse.evaluate`: run your own Python function (your application, a chain, an agent) over a dataset and
have the server score, store and compare it like its own variants.

    import pilothouse

    def support_bot(item):                      # gets a dataset item, returns the answer text
        return my_app(item["input"]["question"])

    run = pilothouse.evaluate("support-questions", support_bot, metrics=["contains", "answer_relevance"],
                              compare_with=[{"name": "prod", "prompt": "support-answer@production"}])
    print(run["summary"]["support_bot"]["metrics"]["contains"]["mean"])

The function runs here, `concurrency` items at a time (a coroutine function is run on its own event loop per
call); its outputs go to the server in batches, where the run's metrics score them, so a function and a prompt
version are judged by exactly the same code and compared item by item (`Pilothouse.compare_experiment`). An
exception in the function is that item's error, not the run's end. A RAG application may return
`{"output": ANSWER, "context": [PASSAGE, ...]}`: the passages it retrieved, in rank order, which
`context_precision` and `context_recall` compare with the item's expected context. `resume=RUN_ID` continues
a run whose process stopped: only the items without a result are run again.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from decimal import Decimal
from pathlib import Path
from typing import Any

from pilothouse.sdk.client import Pilothouse

__all__ = ["evaluate"]

BATCH = 50
BATCH_S = 2.0


def _metric(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"name": spec} if isinstance(spec, str) else dict(spec)


def _call(task: Callable[[dict[str, Any]], Any], item: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = task(item)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(result, dict) and "output" in result:  # a RAG application: its answer and what it retrieved
            context = [str(p) for p in result.get("context") or ()]
            output = str(result["output"])
            return {"item_id": item["id"], "output": output, "latency_ms": latency_ms, "context": context}
        output = result if isinstance(result, str) else str(result)
        return {"item_id": item["id"], "output": output, "latency_ms": latency_ms}
    except Exception as exc:
        return {"item_id": item["id"], "error": f"{type(exc).__name__}: {exc}"[:10_000]}


async def _awaited(value: Any) -> Any:
    return await value


class _Uploader:
    def __init__(self, ph: Pilothouse, run_id: str, variant: str) -> None:
        self.ph, self.run_id, self.variant = ph, run_id, variant
        self.pending: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def add(self, result: dict[str, Any]) -> None:
        with self.lock:
            self.pending.append(result)
            due = len(self.pending) >= BATCH or time.monotonic() - self.last > BATCH_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
            self.last = time.monotonic()
        if batch:
            body = {"variant": self.variant, "results": batch}
            self.ph.request("POST", f"/api/evals/experiments/{self.run_id}/results", json=body)


def evaluate(
    data: str | Path,
    task: Callable[[dict[str, Any]], Any],
    metrics: Sequence[str | Mapping[str, Any]],
    *,
    name: str | None = None,
    variant: str | None = None,
    compare_with: Sequence[Mapping[str, Any]] = (),
    dataset_version: int | None = None,
    split: str | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    max_cost_usd: str | Decimal | None = None,
    resume: str | None = None,
    client: Pilothouse | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `task` over a dataset's items (a dataset name on the server, or a .jsonl/.csv file, pushed as the
    dataset named after the file) and return the finished run: status, progress and the summary per variant and
    metric with intervals. `compare_with` adds server variants (prompt versions, models) to the same run."""
    ph = client or Pilothouse()
    try:
        dataset = str(data)
        if isinstance(data, Path) or dataset.endswith((".jsonl", ".csv")):
            dataset = Path(data).stem
            ph.push_dataset(dataset, Path(data))
        label = str(variant or getattr(task, "__name__", "function"))
        if resume is None:
            function = f"{getattr(task, '__module__', '?')}.{getattr(task, '__qualname__', label)}"
            run = ph.start_experiment(
                name or f"{dataset}: {label}",
                dataset=dataset,
                dataset_version=dataset_version,
                split=split,
                variants=[{"name": label, "function": function}, *(dict(v) for v in compare_with)],
                metrics=[_metric(m) for m in metrics],
                concurrency=concurrency,
                max_cost_usd=max_cost_usd,
                limit=limit,
            )
        else:
            run = ph.get_experiment(resume)
            dataset_version = run["dataset"]["version"]
            split = run["dataset"]["split"]
        run_id = run["id"]
        done = {r["item_id"] for r in ph.experiment_results(run_id, variant=label) if r["status"] == "ok"}
        items = list(ph.dataset_items(dataset, version=run["dataset"]["version"], split=split))
        if limit is not None:
            items = items[:limit]
        todo = [item for item in items if item["id"] not in done]
        uploader = _Uploader(ph, run_id, label)
        _run(task, todo, uploader, concurrency, progress and sys.stderr.isatty())
        uploader.flush()
        final = _after_server_variants(ph, run_id)
        if final["status"] in ("running", "interrupted"):  # interrupted: a server variant's runner stopped
            final = ph.request("POST", f"/api/evals/experiments/{run_id}/finish")
        return final
    finally:
        if client is None:
            ph.close()


def _after_server_variants(ph: Pilothouse, run_id: str) -> dict[str, Any]:
    """The run once every item has a result (the server's variants run on the server) or it ended otherwise."""
    while True:
        found: dict[str, Any] = ph.get_experiment(run_id, summary=False)  # polls skip the intervals' CPU
        progress = found["progress"]
        if found["status"] != "running" or progress["done"] + progress["errors"] >= progress["total"]:
            return ph.get_experiment(run_id)
        time.sleep(0.5)


def _run(
    task: Callable[[dict[str, Any]], Any],
    items: Sequence[dict[str, Any]],
    uploader: _Uploader,
    concurrency: int,
    show: bool,
) -> None:
    bar: Any = None
    if show:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        job = bar.add_task("evaluating", total=len(items))
    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for future in as_completed([pool.submit(_call, task, item) for item in items]):
                uploader.add(future.result())
                if bar is not None:
                    bar.advance(job)
    finally:
        if bar is not None:
            bar.stop()
