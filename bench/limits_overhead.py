"""What the admission and settle stages add to one chat request, in process (no HTTP, no upstream).

For each limit store (memory, Redis) and scenario it times `Admission.admit` + `Ticket.settle` for many
requests one after another: wall time per request (on Redis that includes its two round trips) and this
process's CPU time per request. Scenarios: `off` (no limit, budget or run applies: the default), `on` (a
key with rpm + tpm limits, a hard daily key budget and a soft monthly project budget), `on+run` (that plus a
run id: calls, tokens, cost and repeat counters).

    .venv/bin/python bench/limits_overhead.py [--requests 5000] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from redis.asyncio import Redis

from pilothouse.audit.writer import AuditWriter
from pilothouse.config import Deployment, LimitSettings, ModelEntry, Settings
from pilothouse.gateway.admission import Admission
from pilothouse.gateway.limits.definitions import Definitions
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import LimitStore
from pilothouse.gateway.limits.worst_case import WorstCaseCalculator
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.store import budgets as repo
from pilothouse.store.engine import open_store
from pilothouse.store.keys import create_key
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord

BODY = {"model": "bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}


async def measure(
    admission: Admission, gateway: Gateway, project: str, key: str, n: int, run: bool
) -> tuple[float, float]:
    """Mean wall and CPU microseconds of admit + settle per request."""
    wall = cpu = 0.0
    for i in range(n):
        trace = TraceRecord(project_id=project, name="chat", api_key_id=key)
        body = {**BODY, "messages": [{"role": "user", "content": f"hello there {i}"}]}
        prep = gateway.prepare_chat(body, trace)
        headers = [(b"x-pilothouse-run-id", b"bench-run")] if run else []
        w0, c0 = time.perf_counter(), time.process_time()
        ticket = await admission.admit(prep, trace, headers)
        prep.span.cost_usd, prep.span.input_tokens, prep.span.output_tokens = Decimal("0.00001"), 3, 5
        if ticket is not None:
            await ticket.settle()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    return wall / n * 1e6, cpu / n * 1e6


async def run_backend(name: str, limit_store: LimitStore, n: int, work: Path) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        include_default_models=False,
        data_dir=work,
        limits=LimitSettings(redis_prefix=prefix, run_max_calls=None, run_max_repeats=None, run_max_tokens=None),
        models=[
            ModelEntry(
                name="bench",
                deployments=[
                    Deployment(
                        provider="fake",
                        model="b",
                        context_window=8192,
                        input_price_per_mtok=Decimal(1),
                        output_price_per_mtok=Decimal(2),
                    )
                ],
            )
        ],
    )
    store = open_store(f"sqlite:///{work / f'{name}.db'}")
    with store.begin() as conn:
        project = create_project(conn, f"p-{name}").id
        key = create_key(conn, project_id=project, name="k", role="service")[0].id
    gateway = Gateway(settings, ProviderPool(settings), default_price_book())
    audit = AuditWriter(store, spill_path=work / "audit.jsonl")
    definitions = Definitions(store, 60.0)
    admission = Admission(
        settings, limit_store, definitions, WorstCaseCalculator(gateway.prices, gateway.catalog), audit
    )
    definitions.reload()
    await measure(admission, gateway, project, key, 200, False)  # warm-up
    off = await measure(admission, gateway, project, key, n, False)
    with store.begin() as conn:
        repo.set_rate_limit(
            conn, project_id=project, scope="key", subject=key, rpm=10**9, tpm=10**12, max_tokens=None, actor=None
        )
        repo.set_budget(
            conn,
            project_id=project,
            scope="key",
            subject=key,
            period="day",
            limit_usd=Decimal(10**6),
            mode="hard",
            actor=None,
        )
        repo.set_budget(
            conn,
            project_id=project,
            scope="project",
            subject=project,
            period="month",
            limit_usd=Decimal(10**6),
            mode="soft",
            actor=None,
        )
    definitions.reload()
    await measure(admission, gateway, project, key, 200, False)
    on = await measure(admission, gateway, project, key, n, False)
    on_run = await measure(admission, gateway, project, key, n, True)
    for label, (wall, cpu) in (("off", off), ("on", on), ("on+run", on_run)):
        print(f"| {name} | {label} | {wall:,.1f} | {cpu:,.1f} |")
    audit.close()
    if isinstance(limit_store, RedisLimitStore):
        keys = [k async for k in limit_store.client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await limit_store.client.delete(*keys)
    await limit_store.aclose()
    store.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    print("| store | scenario | wall µs/request | CPU µs/request |")
    print("| --- | --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        await run_backend("memory", MemoryLimitStore(), args.requests, Path(tmp))
        await run_backend("redis", RedisLimitStore(Redis.from_url(args.redis_url)), args.requests, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
