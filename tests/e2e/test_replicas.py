"""Two `pilothouse up` replicas on different ports sharing one fresh PostgreSQL database and one Redis:
a hard budget holds under 50 concurrent requests split across both (spend exceeds the limit by at most one
request's worst case), a requests-per-minute limit admits exactly N of 3N, and a looping run is stopped at
its cap whichever replica each call reaches."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import openai
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from pilothouse import Pilothouse
from tests.conftest import PG_ADMIN_URL, REDIS_URL
from tests.e2e import assert_clean_log
from tests.support.limits import CHAT, delete_prefix, new_prefix, priced_config, require_redis
from tests.support.servers import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.redis, pytest.mark.postgres]

PRICE = Decimal(1000)  # USD per 1M tokens: 0.1 cent a token
TOKEN = PRICE / 10**6
MAX_TOKENS = 4
RELOAD_S = 1.5  # 3x limits.definitions_ttl_s: every replica has seen a new definition by then


@pytest.fixture(scope="module")
def replicas(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    redis = require_redis()
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = pg_url.rsplit("/", 1)[0] + "/" + name
    prefix = new_prefix()
    root = tmp_path_factory.mktemp("replicas")
    config = priced_config(root / "pilothouse.toml", prefix=prefix, price_per_mtok=PRICE, run_max_repeats=3)
    env = {"PILOTHOUSE_REDIS_URL": REDIS_URL}
    servers: list[RunningServer] = []
    try:
        for label in ("a", "b"):
            servers.append(start_server(root / label, config=config, database_url=database_url, extra_env=env))
        yield servers[0], servers[1]
    finally:
        for srv in servers:
            srv.stop()
        delete_prefix(redis, prefix)
        redis.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", autouse=True)
def clean_logs(replicas: tuple[RunningServer, RunningServer]) -> Iterator[None]:
    offsets = [len(s.log()) for s in replicas]
    yield
    for srv, offset in zip(replicas, offsets, strict=True):
        assert_clean_log(srv, offset)


@pytest.fixture(scope="module")
def ph(replicas: tuple[RunningServer, RunningServer]) -> Iterator[Pilothouse]:
    with Pilothouse(replicas[0].url, replicas[0].admin_key) as client:
        yield client


def clients_for(replicas: tuple[RunningServer, RunningServer], secret: str) -> list[OpenAI]:
    return [OpenAI(base_url=s.base_url, api_key=secret, max_retries=0, timeout=120.0) for s in replicas]


def fan_out(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run call(0..n-1) all at once, on n threads; returns results or the exceptions raised."""

    def guarded(i: int) -> Any:
        try:
            return call(i)
        except openai.APIStatusError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(guarded, range(n)))


def test_a_hard_budget_holds_across_replicas_under_fifty_concurrent_requests(
    replicas: tuple[RunningServer, RunningServer], ph: Pilothouse
) -> None:
    key = ph.create_key("replica-budget", role="service")
    limit = Decimal("0.1")
    budget = ph.set_budget("key", key["id"], usd=limit, period="day", mode="hard")
    time.sleep(RELOAD_S)
    clients = clients_for(replicas, key["secret"])
    user = f"replica-{uuid.uuid4().hex[:8]}"

    def request(i: int) -> Any:
        messages = [{"role": "user", "content": "Say hello."}]
        return clients[i % 2].chat.completions.create(
            model=CHAT,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            user=user,
        )

    results = fan_out(50, request)
    for c in clients:
        c.close()
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    admitted = [r for r in results if not isinstance(r, Exception)]
    others = [r for r in results if isinstance(r, Exception) and not isinstance(r, openai.RateLimitError)]
    assert not others, others
    assert refused and admitted, f"{len(admitted)} admitted, {len(refused)} refused"
    assert all("budget_exceeded" in str(r.body) for r in refused)

    traces = ph.list_traces(user=user, limit=100)["data"]
    assert len(traces) == 50
    spent = sum((Decimal(t["cost_usd"]) for t in traces), Decimal(0))
    worst = (max(t["input_tokens"] for t in traces if t["status"] == "ok") + MAX_TOKENS) * TOKEN
    [row] = [b for b in ph.list_budgets() if b["id"] == budget["id"]]
    overshoot = spent - limit
    print(
        f"\nbudget {limit} USD, worst case per request {worst} USD: {len(admitted)} admitted, {len(refused)} refused "
        f"(split across both replicas); spent {spent} USD, overshoot {overshoot} USD "
        f"({overshoot / worst:.2f} worst cases)"
    )
    assert Decimal(row["spent_usd"]) == spent and row["reserved_usd"] == "0"
    assert spent <= limit + worst


def test_an_rpm_limit_admits_exactly_n_of_3n_across_replicas(
    replicas: tuple[RunningServer, RunningServer], ph: Pilothouse
) -> None:
    n = 5
    key = ph.create_key("replica-rpm", role="service")
    ph.set_limits("key", key["id"], rpm=n)
    time.sleep(RELOAD_S)
    clients = clients_for(replicas, key["secret"])

    def request(i: int) -> Any:
        messages = [{"role": "user", "content": f"Say {i}."}]
        return clients[i % 2].chat.completions.create(model=CHAT, messages=messages, max_tokens=1)  # type: ignore[arg-type]

    results = fan_out(3 * n, request)
    for c in clients:
        c.close()
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 2 * n and len(results) - len(refused) == n
    assert all(1 <= int(r.response.headers["retry-after"]) <= 60 for r in refused)
    assert all(f"may make {n} requests per minute" in r.message for r in refused)


def test_a_looping_run_is_stopped_at_its_cap_across_replicas(
    replicas: tuple[RunningServer, RunningServer], ph: Pilothouse
) -> None:
    clients = clients_for(replicas, replicas[0].admin_key)
    run = {"x-pilothouse-run-id": f"agent-{uuid.uuid4().hex[:8]}"}
    messages = [{"role": "user", "content": "What next?"}]
    outcomes = []
    for i in range(5):  # the same call, alternately on each replica; limits.run_max_repeats = 3
        try:
            clients[i % 2].chat.completions.create(model=CHAT, messages=messages, max_tokens=1, extra_headers=run)  # type: ignore[arg-type]
            outcomes.append("ok")
        except openai.RateLimitError as exc:
            assert isinstance(exc.body, dict) and exc.body["code"] == "loop_detected", exc.body
            assert "already made this identical call 3 times" in exc.message
            outcomes.append("loop")
    for c in clients:
        c.close()
    assert outcomes == ["ok", "ok", "ok", "loop", "loop"]
    events = [e for e in ph.audit_events(limit=1000) if e["action"] == "loop_guard.refused"]
    assert len([e for e in events if e["target"] == run["x-pilothouse-run-id"]]) == 2
