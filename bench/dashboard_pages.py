"""Dashboard page speed at scale (issue 17: every page renders server-side in under 300 ms p95 with 1 million
traces in the store), on SQLite and PostgreSQL.

What it does, per engine:
1. the traces: bench/trace_query.py's generator (1,000,000 traces over 30 days with their spans, costs, models,
   prompt versions, users, sessions, tags, groundedness scores, the rollups the sink keeps and the search rows),
   shifted so that the newest trace is about now (the pages' "last 24h" must see a day of traffic); the
   database is cached like trace_query.py's (its own name, `..._v<N>dash2`) and rebuilt when older than
   `--max-age-hours`;
2. an owner key of the bench project and 5,000 audit events, through the store functions;
3. starts the real server (`pilothouse up` in a subprocess, the fake priced model `fake-chat` and the local
   embedding model, nothing preloaded) and, once per database, creates through the API what the other pages
   list: prompts with versions and labels, datasets and finished experiments, an annotation queue, monitor
   rules (evaluated over the last week, so alerts may open), workflow runs (waiting, approved, failed), a RAG
   collection with documents, a guard policy, budgets;
4. signs in through /login like a browser (form post, session cookie) and requests every GET route of
   ui/pages (found from the routers, so new pages are measured without editing this file) with realistic
   parameters: W warm-up requests, then N timed ones, sequentially (a page slower than `--page-budget-s` in
   total stops after 5); prints p50/p95 per page and PASS/FAIL against 300 ms, then a table of both engines.

    .venv/bin/python bench/dashboard_pages.py                        # 1M traces, SQLite and PostgreSQL
    .venv/bin/python bench/dashboard_pages.py --quick --backend sqlite   # 20k traces: a smoke run
    .venv/bin/python bench/dashboard_pages.py --only /traces --runs 50

The timing is the client's wall time for the whole response (localhost HTTP included), so it is an upper bound
on the server's render time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel
from sqlalchemy import create_engine, text

from pilothouse.flows import Flow, StepContext

TARGET_MS = 300.0
OWNER_SECRET = "ph-dash-bench-owner-key-0123456789abcdef"
VIEWER_SECRET = "ph-dash-bench-viewer-key-0123456789abcdef"
MARKER_PROMPT = "support"  # the last object the API seeding creates: present means the store is seeded
DASH_VERSION = "dash2"  # bump when the data added here changes (part of the cached databases' names); 2: 0025
CONFIG = """\
include_default_models = false
canary_check_interval_s = 0
monitor_interval_s = 0

[local]
preload = false

[[models]]
name = "fake-chat"
[[models.deployments]]
provider = "fake"
model = "fake"
input_price_per_mtok = 1
output_price_per_mtok = 2
"""


# -- a workflow for the flow pages (the server loads it from this file) -----------------------------------------
class Review(BaseModel):
    amount: float = 0.0
    fail: bool = False
    summary: str = ""


review_flow = Flow("bench-review", state=Review)


@review_flow.step()
def draft(state: Review, ctx: StepContext) -> dict[str, object]:
    if state.fail:
        raise RuntimeError("the upstream system refused the refund")
    return {"summary": f"refund of {state.amount:.2f} requested"}


review_flow.approval("approve", message="Pay this refund?")
review_flow.start("draft")
review_flow.edge("draft", "approve")
review_flow.edge("approve", Flow.END)


# -- the store ------------------------------------------------------------------------------------------------
def _trace_query() -> Any:
    """bench/trace_query.py, its data version suffixed with ours so its cached databases and ours differ.

    Imported here, not at the top: the server imports this file by path for `review_flow`, without bench/ on
    its path."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import trace_query

    if not trace_query.DATA_VERSION.endswith(DASH_VERSION):
        trace_query.DATA_VERSION += DASH_VERSION
    return trace_query


def say(message: str) -> None:
    print(message, flush=True)


def traces_store(backend: str, n: int, seed: int, cache_dir: Path, *, fresh: bool, max_age_h: float) -> Any:
    """trace_query.py's store with the newest trace about now: (store, project id)."""
    trace_query = _trace_query()
    trace_query.NOW = time.time() - 60.0  # the generated data ends a minute ago
    t0 = time.perf_counter()
    cached = None if fresh else _cached(backend, n, seed, cache_dir)
    if cached is not None and time.time() - _newest(cached[0]) > max_age_h * 3600:
        say(f"  the cached store's newest trace is over {max_age_h:g} h old: generating it again")
        cached[0].dispose()
        cached = None
    if cached is None:
        store, project, _ = trace_query._open(backend, n, seed, cache_dir, True)
    else:
        store, project = cached
    how = "cached database" if cached else f"generated and loaded in {time.perf_counter() - t0:.0f} s"
    say(f"{backend}: {n:,} traces ({how}), newest {(time.time() - _newest(store)) / 60:.0f} min ago")
    return store, project


def _cached(backend: str, n: int, seed: int, cache_dir: Path) -> tuple[Any, str] | None:
    """A database an earlier run generated and seeded (named as trace_query.py names it), or None.

    trace_query's own check (as many traces as generated) does not apply: the seeding adds traces."""
    from pilothouse.store.engine import open_store
    from pilothouse.store.keys import find_by_secret

    trace_query = _trace_query()
    tag = f"{n}_{seed}_v{trace_query.DATA_VERSION}"
    if backend == "sqlite":
        path = cache_dir / f"pilothouse_bench_traces_{tag}.db"
        if not path.exists():
            return None
        url = f"sqlite:///{path}"
    else:
        admin = create_engine(f"{trace_query.PG_SERVER}/postgres")
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": f"bench_traces_{tag}"})
            exists = found.first() is not None
        admin.dispose()
        if not exists:
            return None
        url = f"{trace_query.PG_SERVER}/bench_traces_{tag}"
    store = open_store(url)
    with store.connect() as conn:
        project = conn.execute(text("SELECT id FROM projects WHERE name = 'bench'")).scalar()
        seeded = find_by_secret(conn, OWNER_SECRET) is not None
    if project is None or not seeded:
        store.dispose()
        return None
    return store, str(project)


def _newest(store: Any) -> float:
    with store.connect() as conn:
        return float(conn.execute(text("SELECT max(started_at) FROM traces")).scalar() or 0.0)


def store_keys_and_audit(store: Any, project: str, events: int) -> None:
    """The owner and viewer keys the benchmark signs in with, and a long audit log (once per database)."""
    from pilothouse.audit.chain import append_event
    from pilothouse.store.keys import create_key, find_by_secret

    with store.begin() as conn:
        if find_by_secret(conn, OWNER_SECRET) is not None:
            return
        for secret, role in ((OWNER_SECRET, "owner"), (VIEWER_SECRET, "viewer")):
            key, _ = create_key(conn, project_id=project, name=f"dash-bench {role}", role=role, secret=secret)
            append_event(conn, actor="system", action="key.create", target=key.id, project_id=project)
    say(f"  writing {events:,} audit events")
    actions = ("key.create", "budget.set", "prompt.label", "policy.push", "dashboard.sign_in", "flow.approve")
    for start in range(0, events, 500):
        with store.begin() as conn:
            for i in range(start, min(events, start + 500)):
                append_event(
                    conn,
                    actor=f"key-{i % 17}",
                    action=actions[i % len(actions)],
                    target=f"target-{i}",
                    project_id=project,
                    details={"n": i},
                )


def pick_trace(store: Any) -> str:
    """A recent trace with a score (the trace page shows its spans, scores and costs)."""
    with store.connect() as conn:
        found = conn.execute(text("SELECT trace_id FROM scores ORDER BY created_at DESC LIMIT 1")).scalar()
    return str(found)


# -- the server -----------------------------------------------------------------------------------------------
@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(database_url: str, data_dir: Path) -> Server:
    """`pilothouse up` on the database, with this benchmark's models; returns once /readyz answers 200."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "pilothouse.toml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    exe = Path(sys.executable).with_name("pilothouse")
    args = [str(exe), "up", "--config", str(config), "--data-dir", str(data_dir), "--database-url", database_url]
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*args, "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=out, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise SystemExit(f"the server did not become ready in 180 s:\n{log.read_text()[-3000:]}")


# -- what the other pages list, created through the API -------------------------------------------------------
@dataclass
class Seeded:
    trace_id: str
    experiment_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    collection: str = "handbook"
    dataset: str = "support-qa"
    queue: str = "review"
    rule: str = "error-rate"
    policy: str = "bench-guard"
    prompt: str = MARKER_PROMPT


def _ok(api: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = api.request(method, path, **kwargs)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def _prompt_file(name: str, text_: str) -> dict[str, Any]:
    body = (
        f"name: {name}\nmodel: fake-chat\nvariables:\n  question: {{type: string}}\nmessages:\n"
        f'  - role: system\n    content: "{text_}"\n  - role: user\n    content: "{{{{ question }}}}"\n'
    )
    return {"files": [{"path": f"{name}.yaml", "content": body}]}


def _wait(api: httpx.Client, path: str, busy: tuple[str, ...], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = str(_ok(api, "GET", path)["status"])
        if status not in busy or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def seed_through_api(api: httpx.Client, store: Any, project: str, seeded: Seeded) -> None:
    """Each step on its own: one the server refuses is reported and the rest still run."""
    steps: list[tuple[str, Callable[[], None]]] = [
        ("datasets and experiments", lambda: _experiments(api, seeded)),
        ("annotation queue", lambda: _queue(api, seeded)),
        ("workflow runs", lambda: _flows(api, seeded)),
        ("RAG collection", lambda: _rag(api, seeded)),
        ("policy, budgets, keys", lambda: _governance(api, seeded)),
        ("monitor rules and alerts", lambda: _monitors(api, store, project, seeded)),
        ("prompts", lambda: _prompts(api, seeded)),  # last: MARKER_PROMPT says the seeding is done
    ]
    for name, step in steps:
        t0 = time.perf_counter()
        try:
            step()
            say(f"  seeded {name} ({time.perf_counter() - t0:.1f} s)")
        except Exception as exc:  # a step the server refuses must not stop the benchmark
            say(f"  WARNING: seeding {name} failed: {exc}")


def _prompts(api: httpx.Client, seeded: Seeded) -> None:
    for name, versions in (("triage", 3), ("summarise", 2), ("extract", 6), (seeded.prompt, 5)):
        for v in range(1, versions + 1):
            _ok(api, "POST", "/api/prompts/push", json=_prompt_file(name, f"You are {name} assistant, revision {v}."))
        _ok(api, "PUT", f"/api/prompts/{name}/labels/production", json={"version": max(1, versions - 1)})
        _ok(api, "PUT", f"/api/prompts/{name}/labels/staging", json={"version": versions})


def _experiments(api: httpx.Client, seeded: Seeded) -> None:
    items = [{"input": f"question {i} about refunds", "expected": "refund"} for i in range(60)]
    _ok(api, "POST", "/api/evals/datasets", json={"name": seeded.dataset, "items": items})
    for run in range(3):
        body = {
            "name": f"models-{run}",
            "dataset": seeded.dataset,
            "variants": [{"name": "a", "model": "fake-chat"}, {"name": "b", "model": "fake-chat"}],
            "metrics": [{"name": "contains", "options": {"value": "fake"}}],
        }
        started = _ok(api, "POST", "/api/evals/experiments", json=body)
        _wait(api, f"/api/evals/experiments/{started['id']}", ("running", "queued"))
        seeded.experiment_ids.append(str(started["id"]))


def _queue(api: httpx.Client, seeded: Seeded) -> None:
    _ok(
        api,
        "POST",
        "/api/evals/queues",
        json={"name": seeded.queue, "score": {"name": "helpful", "data_type": "boolean"}},
    )
    page = _ok(api, "GET", "/api/traces", params={"limit": 40})
    ids = [t["id"] for t in page.get("traces", page.get("items", []))] or [seeded.trace_id]
    _ok(api, "POST", f"/api/evals/queues/{seeded.queue}/items", json={"trace_ids": ids})


def _flows(api: httpx.Client, seeded: Seeded) -> None:
    flow = f"{Path(__file__).resolve()}:review_flow"
    for i in range(24):
        run = _ok(
            api, "POST", "/api/flows/runs", json={"flow": flow, "input": {"amount": 20 + i * 7.5, "fail": i % 8 == 7}}
        )
        status = _wait(api, f"/api/flows/runs/{run['id']}", ("queued", "running"), timeout=60)
        if status == "waiting_for_approval" and i % 3 == 0:
            _ok(api, "POST", f"/api/flows/runs/{run['id']}/approve", json={"step": "approve", "comment": "ok"})
        seeded.run_ids.append(str(run["id"]))


def _rag(api: httpx.Client, seeded: Seeded) -> None:
    _ok(
        api,
        "POST",
        "/api/rag/collections",
        json={"name": seeded.collection, "index": "exact"},
    )
    topics = _trace_query().TOPICS
    for start in range(0, 300, 100):
        records = [
            {
                "id": f"doc-{i}",
                "title": f"{topics[i % len(topics)].title()} policy {i}",
                "text": " ".join(
                    f"Section {j}: how {topics[(i + j) % len(topics)]} requests are handled." for j in range(12)
                ),
                "groups": ["support"] if i % 4 else ["finance"],
            }
            for i in range(start, start + 100)
        ]
        _ok(api, "POST", f"/api/rag/collections/{seeded.collection}/records", json={"records": records})


def _governance(api: httpx.Client, seeded: Seeded) -> None:
    policy = f"name: {seeded.policy}\nscope: {{routes: [chat]}}\ninput:\n  - {{scanner: secrets, action: flag}}\n"
    _ok(api, "POST", "/api/policies", json={"content": policy})
    for i, user in enumerate(("user-1", "user-2", "user-7")):
        _ok(
            api, "POST", "/api/budgets", json={"scope": "user", "subject": user, "usd": str(5 + i * 10), "mode": "soft"}
        )
    for role in ("developer", "service", "viewer"):
        _ok(api, "POST", "/api/keys", json={"name": f"bench-{role}", "role": role})


def _monitors(api: httpx.Client, store: Any, project: str, seeded: Seeded) -> None:
    for name, metric in ((seeded.rule, "error_rate"), ("latency", "latency_p95"), ("spend", "cost_per_request")):
        response = api.post("/api/monitors/rules", json={"name": name, "metric": metric})
        if response.status_code >= 300:
            say(f"    monitor rule {name} ({metric}): {response.status_code} {response.text[:200]}")
    from pilothouse.monitors.alerts import evaluate_rule
    from pilothouse.monitors.rules import list_rules

    with store.connect() as conn:
        rules = list_rules(conn, project)
    now = time.time()
    for rule in rules:
        for hours_ago in range(7 * 24, -1, -6):
            evaluate_rule(store, rule, now - hours_ago * 3600)


# -- the pages ------------------------------------------------------------------------------------------------
@dataclass
class Page:
    label: str
    url: str


def page_routes() -> list[str]:
    """The path of every GET route of the dashboard's page routers (routers a page router includes too)."""
    from pilothouse.ui.pages import ROUTERS

    return [path for router in ROUTERS for path in _get_paths(router.routes, "")]


def _get_paths(routes: Any, prefix: str) -> list[str]:
    from fastapi.routing import APIRoute

    found: list[str] = []
    for route in routes:
        if isinstance(route, APIRoute):
            if "GET" in (route.methods or ()):
                found.append(prefix + route.path)
        elif getattr(route, "original_router", None) is not None:  # FastAPI keeps an included router whole
            inner = prefix + str(getattr(getattr(route, "include_context", None), "prefix", "") or "")
            found.extend(_get_paths(route.original_router.routes, inner))
    return found


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_VARIANTS: dict[str, list[dict[str, str]]] = {
    # the query strings people use; a route not listed here is timed with no query string
    "/": [
        {},
        {"range": "30d"},
        {"range": "7d", "model": "gpt-4o"},
        {"range": "30d", "prompt": "support"},
        # the end-user filter reads that user's rows: user-7 is typical, user-1 the heaviest (over half the traffic)
        {"range": "24h", "user": "user-7"},
        {"range": "30d", "user": "user-7"},
        {"range": "24h", "user": "user-1"},
        {"range": "30d", "user": "user-1"},
    ],
    "/traces": [
        {},
        {"order": "cost"},
        {"order": "latency", "range": "7d"},
        {"range": "30d"},
        {"range": "30d", "order": "cost"},
        {"range": "all"},
        {"range": "all", "order": "cost"},
        {"range": "7d", "model": "gpt-4o", "status": "error"},
        {"q": "refund"},
        {"range": "30d", "q": "refund invoice"},
        {"range": "30d", "q": "lighthouse"},
        {"range": "30d", "user": "user-7"},
        {"range": "30d", "tag": "vip"},
        {"range": "7d", "prompt": "support", "prompt_version": "4"},
        {"range": "7d", "score": "groundedness<0.3"},
        {"range": "30d", "cost_min": "0.05"},
        {"range": "30d", "latency_min_ms": "8000"},
    ],
    "/prompts/{name}": [{}, {"range": "24h"}, {"range": "30d"}, {"range": "90d"}],
    "/prompts/{name}/diff": [{"a": "3", "b": "5"}],
    "/evals/history": [{"dataset": "support-qa", "metric": "contains"}],
    "/evals/{experiment_id}": [{}, {"baseline": "a", "candidate": "b"}],
    "/monitors": [{}, {"range": "7d"}, {"range": "30d"}],
    "/monitors/series": [{}, {"metric": "latency_p95", "by": "model", "range": "7d"}],
    "/monitors/alerts": [{}, {"status": "resolved"}],
    "/flows": [{}, {"status": "waiting_for_approval"}],
    "/rag/{collection}": [{}, {"page": "2"}],
}


def pages(seeded: Seeded) -> tuple[list[Page], list[str]]:
    """The URLs to time (realistic parameters for each route) and the routes skipped (no value for a parameter)."""
    by_section = {
        "prompts": seeded.prompt,
        "rag": seeded.collection,
        "monitors": seeded.rule,
        "governance": seeded.policy,
    }
    values = {
        "trace_id": seeded.trace_id,
        "experiment_id": seeded.experiment_ids[0] if seeded.experiment_ids else "",
        "run_id": next(iter(seeded.run_ids), ""),
        "version": "4",
        "ref": "4",
        "label": "production",
        "queue": seeded.queue,
        "dataset": seeded.dataset,
        "collection": seeded.collection,
        "rule": seeded.rule,
        "policy": seeded.policy,
        "prompt": seeded.prompt,
    }
    found: list[Page] = []
    skipped: list[str] = []
    for path in page_routes():
        section = path.strip("/").split("/")[0]
        names = _PARAM.findall(path)
        filled = dict(values)
        if "name" in names:
            filled["name"] = {"evals": seeded.queue if "queue" in path else seeded.dataset}.get(
                section, by_section.get(section, "")
            )
        if any(not filled.get(n) for n in names):
            skipped.append(f"{path} (no value for {', '.join(n for n in names if not filled.get(n))})")
            continue
        url = _PARAM.sub(lambda m, f=filled: f[m.group(1)], path)  # type: ignore[misc]
        for v in _VARIANTS.get(path, [{}]):
            query = f"?{urlencode(v)}" if v else ""
            found.append(Page(path + ("?" + "&".join(f"{k}={x}" for k, x in v.items()) if v else ""), url + query))
    return found, skipped


def sign_in(url: str, secret: str) -> httpx.Client:
    """A browser's session: the login form posted, the session cookie kept."""
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    response = client.post("/login", data={"api_key": secret, "next": "/"})
    if response.status_code != 303 or not client.cookies:
        raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:300]}")
    return client


@dataclass
class Timing:
    label: str
    status: int
    p50: float = float("nan")
    p95: float = float("nan")
    size: int = 0
    n: int = 0

    @property
    def verdict(self) -> str:
        if self.status != 200:
            return f"HTTP {self.status}"
        return "PASS" if self.p95 < TARGET_MS else "FAIL"


def time_page(client: httpx.Client, page: Page, warmup: int, runs: int, budget_s: float) -> Timing:
    """`warmup` untimed requests, then up to `runs` timed ones; a slow page stops after `budget_s` seconds of
    timed requests (at least 5), so one page at seconds a request does not hold the run for minutes."""
    first = client.get(page.url)
    if first.status_code != 200:
        return Timing(page.label, first.status_code, size=len(first.content))
    for _ in range(max(0, warmup - 1)):
        client.get(page.url)
    times: list[float] = []
    while len(times) < runs and (len(times) < 5 or sum(times) < budget_s * 1000):
        t0 = time.perf_counter()
        response = client.get(page.url)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            return Timing(page.label, response.status_code)
    times.sort()
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return Timing(page.label, 200, statistics.median(times), p95, len(first.content), len(times))


# -- one engine -----------------------------------------------------------------------------------------------
def run_engine(backend: str, args: argparse.Namespace) -> list[Timing]:
    store, project = traces_store(
        backend, args.traces, args.seed, args.cache_dir, fresh=args.fresh, max_age_h=args.max_age_hours
    )
    store_keys_and_audit(store, project, args.audit_events)
    database_url = store.engine.url.render_as_string(hide_password=False)
    seeded = Seeded(trace_id=pick_trace(store))
    data_dir = args.cache_dir / f"pilothouse_dash_{backend}_{args.traces}_{args.seed}"
    say(f"  starting the server ({data_dir / 'server.log'})")
    server = start_server(database_url, data_dir)
    try:
        api = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {OWNER_SECRET}"}, timeout=120)
        if api.get(f"/api/prompts/{MARKER_PROMPT}").status_code == 404:
            say("  seeding prompts, experiments, flows, RAG, monitors, governance through the API")
            seed_through_api(api, store, project, seeded)
        _known_ids(api, seeded)
        client = sign_in(server.url, OWNER_SECRET)
        todo, skipped = pages(seeded)
        todo = [p for p in todo if not args.only or any(o in p.label for o in args.only)]
        for line in skipped:
            say(f"  SKIP {line}")
        say(f"  {len(todo)} pages x ({args.warmup} warm-up + {args.runs} timed requests)")
        results = []
        for page in todo:
            timing = time_page(client, page, args.warmup, args.runs, args.page_budget_s)
            results.append(timing)
            kib = timing.size / 1024
            say(
                f"  {page.label:60.60s} p50 {timing.p50:7.1f} ms  p95 {timing.p95:7.1f} ms  n {timing.n:3d}  "
                f"{kib:5.0f} KiB  {timing.verdict}"
            )
        failed = sum(t.verdict != "PASS" for t in results)
        say(f"  {backend}: {len(results) - failed} of {len(results)} pages under {TARGET_MS:.0f} ms p95")
        return results
    finally:
        server.stop()
        store.dispose()


def _known_ids(api: httpx.Client, seeded: Seeded) -> None:
    """Ids of what an earlier run seeded (experiments, flow runs), read back through the API."""
    if not seeded.experiment_ids:
        listed = api.get("/api/evals/experiments")
        if listed.status_code == 200:
            body = listed.json()
            rows = body if isinstance(body, list) else body.get("data", body.get("experiments", []))
            seeded.experiment_ids = [str(r["id"]) for r in rows]
    if not seeded.run_ids:
        listed = api.get("/api/flows/runs")
        if listed.status_code == 200:
            body = listed.json()
            rows = body if isinstance(body, list) else body.get("data", body.get("runs", []))
            waiting = [r for r in rows if r.get("status") == "waiting_for_approval"]
            seeded.run_ids = [str(r["id"]) for r in waiting + rows]


def summary(results: dict[str, list[Timing]]) -> None:
    backends = list(results)
    labels = list(dict.fromkeys(t.label for ts in results.values() for t in ts))
    say("\npage" + "".join(f" | {b:>10} p50   p95  " for b in backends))
    for label in labels:
        cells = []
        for b in backends:
            t = next((x for x in results[b] if x.label == label), None)
            cells.append("            -          " if t is None else f" | {t.p50:8.1f} {t.p95:7.1f} {t.verdict:4.4s}")
        say(f"{label:60.60s}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1_000_000, help="traces in the store (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 traces, 3+10 requests a page")
    parser.add_argument("--runs", type=int, help="timed requests per page (default 30; --quick: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (default 3)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp"), help="SQLite files and server data dirs")
    parser.add_argument("--fresh", action="store_true", help="generate the traces again even if cached")
    parser.add_argument("--max-age-hours", type=float, default=12.0, help="regenerate a cached store older than this")
    parser.add_argument(
        "--page-budget-s", type=float, default=30.0, help="stop timing a slow page after this (at least 5 samples)"
    )
    parser.add_argument("--audit-events", type=int, default=5000)
    parser.add_argument(
        "--only", action="append", help="time only the pages whose label contains this text (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.traces, args.audit_events = 20_000, 500
    args.runs = args.runs or (10 if args.quick else 30)
    results = {b: run_engine(b, args) for b in args.backend or ["sqlite", "postgresql"]}
    summary(results)
    if args.json:
        rows = {b: [t.__dict__ | {"verdict": t.verdict} for t in ts] for b, ts in results.items()}
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
