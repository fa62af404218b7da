"""Fault injection for spend: two `pilothouse up` replicas on one fresh PostgreSQL database and one Redis
(reached through tests/support/tcp_proxy.py, which the tests cut and restore), in front of
tests/support/billing_upstream.py, which records what a provider would bill. One test per way spend used to
be lost or let through (issue 8): input under-estimated, streams without usage, a replica killed with
SIGKILL mid-call, Redis counters deleted, Redis cut between admission and settlement, a client that
disconnects mid-call, an upstream that trickles past the call deadline.

Each asserts the spend guarantee of docs/cost-control.md against the upstream's bill:

* recorded spend (the sum of the traces' costs in the store, and `spent_usd` of `GET /api/budgets`) equals
  what the upstream billed where the upstream reported usage; where it could not (no usage, a call cut by a
  kill, a deadline or a disconnect) it is at least the bill and at most the reservations of those calls;
* a hard budget is exceeded by at most one request's reservation;
* nothing stays reserved once the calls are over, and no call is left in the in-flight ledger.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from sqlalchemy import Engine, create_engine, select, text

from pilothouse import Pilothouse
from pilothouse.gateway.tokens import input_token_bound
from pilothouse.money import from_pico
from pilothouse.store.tables import spans, traces
from tests.conftest import PG_ADMIN_URL, REDIS_URL
from tests.e2e import assert_clean_log
from tests.support.billing_upstream import BillingUpstream, prompt_tokens
from tests.support.limits import delete_prefix, new_prefix, require_redis
from tests.support.servers import RunningServer, start_server
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

PRICE = Decimal(1000)  # USD per 1M tokens, input and output: 0.1 cent a token
RELOAD_S = 1.5  # 3x limits.definitions_ttl_s: every replica has seen a new budget by then
RESERVATION_TTL_S = 6.0  # longer than any call here
RECOVERY_INTERVAL_S = 1.0  # how often a replica looks for calls a dead one left in flight
CALL_DEADLINE_S = 3.0  # the `bill-trickle` model's overall deadline
SETTLE_WAIT_S = 30.0  # how long a test waits for a retried settle or a recovery to show

MODELS = {"bill-normal": "normal", "bill-nousage": "nousage", "bill-slow": "slow", "bill-trickle": "trickle"}
CHINESE = "请用三句话解释为什么预算必须在两个副本之间共享并给出一个例子。"
JSON_TEXT = '{"order": {"id": 918273, "items": [{"sku": "A-77", "qty": 3}, {"sku": "B-12", "qty": 1}]}}'
DIGITS = "3141592653 5897932384 6264338327 9502884197 1693993751 0582097494"


# -- the cluster ---------------------------------------------------------------------------------------------
@dataclass
class Cluster:
    replicas: list[RunningServer]
    config: Path
    database_url: str
    engine: Engine
    proxy: TcpProxy
    upstream: BillingUpstream
    prefix: str
    env: dict[str, str]

    def restart(self, index: int) -> RunningServer:
        """Start replica `index` again on its data dir (after it was killed)."""
        old = self.replicas[index]
        old.log_path.replace(old.log_path.with_name(f"server.killed-{old.process.pid}.log"))  # kept to read
        self.replicas[index] = start_server(
            old.data_dir, config=self.config, database_url=self.database_url, extra_env=self.env
        )
        return self.replicas[index]


def write_config(path: Path, *, prefix: str, upstream: str) -> Path:
    lines = [
        "include_default_models = false",
        "",
        "[local]",
        "preload = false",
        "",
        "[limits]",
        f'redis_prefix = "{prefix}"',
        "definitions_ttl_s = 0.5",
        f"reservation_ttl_s = {RESERVATION_TTL_S}",
        f"recovery_interval_s = {RECOVERY_INTERVAL_S}",
        "settle_retry_s = 0.5",
        "reconcile_interval_s = 0",  # off: a settle lost to a Redis cut must be made good by its own retry
    ]
    for name, mode in MODELS.items():
        lines += ["", "[[models]]", f'name = "{name}"']
        if mode == "trickle":
            lines.append(f"call_deadline_s = {CALL_DEADLINE_S}")
        lines += [
            "[[models.deployments]]",
            'provider = "openai"',
            f'model = "{mode}"',
            f'base_url = "{upstream}"',
            f'input_price_per_mtok = "{PRICE}"',
            f'output_price_per_mtok = "{PRICE}"',
            "timeout_s = 2" if mode == "trickle" else "timeout_s = 30",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cluster(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis = require_redis()
    host, port = redis.connection_pool.connection_kwargs["host"], redis.connection_pool.connection_kwargs["port"]
    proxy = TcpProxy(str(host), int(port))
    proxy_port = proxy.start()
    upstream = BillingUpstream(price_in_per_mtok=PRICE, price_out_per_mtok=PRICE)
    upstream.start()
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = pg_url.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(database_url)
    prefix = new_prefix()
    root = tmp_path_factory.mktemp("spend-faults")
    config = write_config(root / "pilothouse.toml", prefix=prefix, upstream=upstream.base_url)
    db = REDIS_URL.rsplit("/", 1)[1] if REDIS_URL.count("/") > 2 else "0"
    env = {"PILOTHOUSE_REDIS_URL": f"redis://127.0.0.1:{proxy_port}/{db}"}
    replicas: list[RunningServer] = []
    try:
        for label in ("a", "b"):
            replicas.append(start_server(root / label, config=config, database_url=database_url, extra_env=env))
        yield Cluster(replicas, config, database_url, engine, proxy, upstream, prefix, env)
    finally:
        for srv in replicas:
            srv.stop()
        proxy.stop()
        upstream.stop()
        delete_prefix(redis, prefix)
        redis.close()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    for srv in replicas:  # no traceback, no error logged, no trace spilled (a trace not stored is spend nearly lost)
        assert_clean_log(srv)


@pytest.fixture
def ph(cluster: Cluster) -> Iterator[Pilothouse]:
    srv = cluster.replicas[0]
    with Pilothouse(srv.url, srv.admin_key) as client:
        yield client


@pytest.fixture
def healthy(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster as a test leaves it: Redis reachable, both replicas running."""
    cluster.upstream.slow_s = 1.0
    yield cluster
    cluster.proxy.restore()
    for i, srv in enumerate(cluster.replicas):
        if srv.process.poll() is not None:
            cluster.restart(i)


# -- what was billed, what was recorded ----------------------------------------------------------------------
@dataclass
class Subject:
    """A fresh key with a hard `total` budget, and the `user` its calls carry (the upstream bills by it)."""

    key_id: str
    secret: str
    budget_id: str
    limit: Decimal
    user: str


def new_subject(ph: Pilothouse, limit: Decimal) -> Subject:
    key = ph.create_key(f"faults-{uuid.uuid4().hex[:6]}", role="service")
    budget = ph.set_budget("key", key["id"], usd=limit, period="total", mode="hard")
    time.sleep(RELOAD_S)
    return Subject(key["id"], key["secret"], budget["id"], limit, f"u-{uuid.uuid4().hex[:10]}")


def reservation(messages: list[dict[str, Any]], max_tokens: int) -> Decimal:
    """What the gateway reserves for a call: its input bound plus max_tokens, at PRICE."""
    return (input_token_bound(messages) + max_tokens) * PRICE / Decimal(10**6)


@dataclass
class Ledger:
    billed: Decimal
    recorded: Decimal
    """Sum of the subject's trace costs in the store."""
    by_status: dict[str, int]
    budget_spent: Decimal
    budget_reserved: Decimal
    in_flight: int
    """Rows of the subject left in the in-flight ledger (none once everything is settled)."""

    def __str__(self) -> str:
        return (
            f"billed {self.billed} USD, recorded {self.recorded} USD in traces {self.by_status}, "
            f"/api/budgets spent {self.budget_spent} reserved {self.budget_reserved}, in flight {self.in_flight}"
        )


def ledger(cluster: Cluster, ph: Pilothouse, subject: Subject) -> Ledger:
    with cluster.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status, count(*), coalesce(sum(cost_usd), 0) FROM traces WHERE api_key_id = :k GROUP BY status"
            ),
            {"k": subject.key_id},
        ).all()
        in_flight = int(
            conn.execute(
                text("SELECT count(*) FROM inflight_calls WHERE api_key_id = :k"), {"k": subject.key_id}
            ).scalar_one()
        )
    recorded = sum((from_pico(int(r[2])) for r in rows), Decimal(0))
    [row] = [b for b in ph.list_budgets() if b["id"] == subject.budget_id]
    return Ledger(
        billed=cluster.upstream.billed_usd(subject.user),
        recorded=recorded,
        by_status={str(r[0]): int(r[1]) for r in rows},
        budget_spent=Decimal(row["spent_usd"]),
        budget_reserved=Decimal(row["reserved_usd"]),
        in_flight=in_flight,
    )


def settled_ledger(
    cluster: Cluster, ph: Pilothouse, subject: Subject, done: Callable[[Ledger], bool] | None = None
) -> Ledger:
    """The ledger once nothing is reserved any more and the budget agrees with the traces (and `done`
    holds), or as it is after SETTLE_WAIT_S."""
    deadline = time.monotonic() + SETTLE_WAIT_S
    while True:
        found = ledger(cluster, ph, subject)
        ok = found.budget_reserved == 0 and found.budget_spent == found.recorded and found.in_flight == 0
        if (ok and (done is None or done(found))) or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def per_call(cluster: Cluster, subject: Subject) -> dict[str, tuple[Decimal, Decimal]]:
    """For calls each made with their own `user` (`{subject.user}-{i}`): user -> (billed, recorded)."""
    with cluster.engine.connect() as conn:
        recorded = {
            str(r[0]): from_pico(int(r[1]))
            for r in conn.execute(
                text("SELECT user_id, coalesce(sum(cost_usd), 0) FROM traces WHERE api_key_id = :k GROUP BY user_id"),
                {"k": subject.key_id},
            )
        }
    billed: dict[str, Decimal] = {}
    for call in cluster.upstream.calls(subject.user):
        billed[str(call.user)] = billed.get(str(call.user), Decimal(0)) + call.usd
    return {u: (billed.get(u, Decimal(0)), recorded.get(u, Decimal(0))) for u in sorted({*billed, *recorded})}


def llm_spans(cluster: Cluster, subject: Subject) -> list[tuple[str, Decimal | None, dict[str, Any]]]:
    """(status, cost, attributes about the upstream call and its cost) of the subject's llm spans."""
    query = (
        select(spans.c.status, spans.c.cost_usd, spans.c.attributes)
        .join(traces, traces.c.id == spans.c.trace_id)
        .where(traces.c.api_key_id == subject.key_id, spans.c.kind == "llm")
    )
    with cluster.engine.connect() as conn:
        rows = conn.execute(query).all()
    keep = ("upstream", "cost", "client", "cancel")
    return [(r[0], r[1], {k: v for k, v in (r[2] or {}).items() if any(w in k for w in keep)}) for r in rows]


def assert_each_within_reservation(cluster: Cluster, subject: Subject, contents: list[str], max_tokens: int) -> None:
    """Calls cut before their usage came back (call i made with user `{subject.user}-{i}` and `contents[i]`):
    each is recorded at no less than the upstream billed for it, and no more than its reservation."""
    found = per_call(cluster, subject)
    assert sorted(found) == [f"{subject.user}-{i}" for i in range(len(contents))], found
    for i, content in enumerate(contents):
        billed, recorded = found[f"{subject.user}-{i}"]
        most = reservation([{"role": "user", "content": content}], max_tokens)
        assert billed <= recorded <= most, (
            f"call {i}: billed {billed} USD, recorded {recorded} USD, reservation {most} USD; "
            f"llm spans: {llm_spans(cluster, subject)}"
        )


def assert_settled(found: Ledger) -> None:
    assert found.budget_reserved == 0, f"still reserved: {found}"
    assert found.in_flight == 0, f"calls left in the in-flight ledger: {found}"
    assert found.budget_spent == found.recorded, f"/api/budgets and the traces disagree: {found}"


Clients = Callable[..., list[OpenAI]]


@pytest.fixture
def clients(cluster: Cluster) -> Iterator[Clients]:
    """`clients(subject, timeout=60)`: an OpenAI client with the subject's key on each replica, without
    retries (a failed call is seen once); closed after the test."""
    made: list[OpenAI] = []

    def make(subject: Subject, timeout: float = 60.0) -> list[OpenAI]:
        new = [
            OpenAI(base_url=s.base_url, api_key=subject.secret, max_retries=0, timeout=timeout)
            for s in cluster.replicas
        ]
        made.extend(new)
        return new

    yield make
    for client in made:
        client.close()


def fan_out(n: int, call: Callable[[int], Any]) -> list[Any]:
    """call(0..n-1) all at once on n threads: results, or the exceptions raised."""

    def guarded(i: int) -> Any:
        try:
            return call(i)
        except (openai.APIError, httpx.HTTPError) as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(guarded, range(n)))


def chat(
    client: OpenAI, subject: Subject, model: str, content: str, max_tokens: int, user: str | None = None, **kw: Any
) -> Any:
    messages = [{"role": "user", "content": content}]
    return client.chat.completions.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        user=user or subject.user,
        **kw,
    )


def refused_by_budget(results: list[Any]) -> list[openai.RateLimitError]:
    return [r for r in results if isinstance(r, openai.RateLimitError) and "budget_exceeded" in str(r.body)]


def unexpected(results: list[Any]) -> list[Exception]:
    """Failures other than a budget's refusal."""
    refused = {id(r) for r in refused_by_budget(results)}
    return [r for r in results if isinstance(r, Exception) and id(r) not in refused]


# -- the scenarios ---------------------------------------------------------------------------------------------
def test_input_under_estimate_short_chinese_json_digits_stay_within_one_reservation(
    healthy: Cluster, ph: Pilothouse, clients: Clients
) -> None:
    """Issue 8.1: the reservation must bound what the provider bills for the input, whatever the text."""
    cluster = healthy
    subject = new_subject(ph, Decimal("0.3"))
    texts = ["hi", CHINESE, JSON_TEXT, DIGITS]
    max_tokens = 4
    worst = max(reservation([{"role": "user", "content": t}], max_tokens) for t in texts)
    cs = clients(subject)
    results = fan_out(
        24, lambda i: chat(cs[i % 2], subject, "bill-slow", texts[i % len(texts)], max_tokens)
    )  # all admitted (or refused) before the first settles: the upstream takes slow_s
    assert not unexpected(results), unexpected(results)
    found = settled_ledger(cluster, ph, subject)
    calls = cluster.upstream.calls(subject.user)
    print(
        f"\ninput under-estimate: {len(calls)} of 24 admitted, limit {subject.limit}, reservation <= {worst}: {found}"
    )
    by_prompt = {prompt_tokens([{"role": "user", "content": t}]): t for t in texts}
    assert len(by_prompt) == len(texts)
    for call in calls:  # every admitted call's reservation bounds its bill
        content = by_prompt[call.prompt_tokens]
        assert reservation([{"role": "user", "content": content}], max_tokens) >= call.usd, (content, call)
    assert found.recorded == found.billed, found
    assert_settled(found)
    assert found.billed <= subject.limit + worst, f"overshoot {found.billed - subject.limit} > {worst}: {found}"
    assert refused_by_budget(results)


def test_streams_without_usage_are_metered_at_max_tokens(healthy: Cluster, ph: Pilothouse, clients: Clients) -> None:
    """Issue 8.2: a stream without a usage chunk meters its output capped by max_tokens (the upstream
    billed exactly max_tokens), and its input at no less than the bill."""
    cluster = healthy
    max_tokens = 7
    content = "Count to ten."
    one = reservation([{"role": "user", "content": content}], max_tokens)
    subject = new_subject(ph, one * 3 - Decimal("0.001"))  # admits 3 one after the other, then refuses
    cs = clients(subject)
    outcomes = []
    for i in range(5):
        try:
            stream = chat(cs[i % 2], subject, "bill-nousage", content, max_tokens, stream=True)
            outcomes.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        except openai.RateLimitError as exc:
            assert "budget_exceeded" in str(exc.body)
            outcomes.append("refused")
    found = settled_ledger(cluster, ph, subject)
    calls = cluster.upstream.calls(subject.user)
    print(f"\nstreams without usage: {outcomes.count('refused')} of 5 refused, reservation {one}: {found}")
    assert all(c.completion_tokens == max_tokens and c.finished for c in calls), calls
    with cluster.engine.connect() as conn:
        tokens = conn.execute(
            text("SELECT input_tokens, output_tokens FROM traces WHERE api_key_id = :k AND status = 'ok'"),
            {"k": subject.key_id},
        ).all()
    assert len(tokens) == len(calls) >= 2
    assert [t[1] for t in tokens] == [max_tokens] * len(calls), f"output tokens metered {tokens}, billed {max_tokens}"
    assert all(t[0] >= calls[0].prompt_tokens for t in tokens), f"input metered {tokens}, billed {calls[0]}"
    assert found.billed <= found.recorded <= one * len(calls), found
    assert_settled(found)
    assert found.recorded <= subject.limit + one, found
    assert outcomes[-1] == "refused"


def test_a_replica_killed_mid_call_charges_its_calls_at_their_reservation(
    healthy: Cluster, ph: Pilothouse, clients: Clients
) -> None:
    """Issue 8.3: calls in flight on a replica killed with SIGKILL were billed by the upstream; they are
    settled at their reservation as `unknown_outcome` traces, never released as if unspent."""
    cluster = healthy
    cluster.upstream.slow_s = 3.0
    subject = new_subject(ph, Decimal(10))
    max_tokens = 8
    contents = [f"Summarise item {i} of the order." for i in range(3)]
    a, b = clients(subject)
    chat(a, subject, "bill-normal", "A call that completes.", max_tokens)
    with ThreadPoolExecutor(max_workers=3) as pool:
        doomed = [pool.submit(chat, b, subject, "bill-slow", c, max_tokens) for c in contents]
        cluster.upstream.wait_received(4, subject.user)
        cluster.replicas[1].process.kill()  # SIGKILL: no shutdown, no settle, no trace
        cluster.replicas[1].process.wait(timeout=10)
        for future in doomed:
            assert isinstance(future.exception(timeout=30), openai.APIConnectionError)
    cluster.restart(1)
    killed = sum((reservation([{"role": "user", "content": c}], max_tokens) for c in contents), Decimal(0))
    found = settled_ledger(cluster, ph, subject, lambda f: f.by_status.get("unknown_outcome", 0) >= len(contents))
    print(f"\nSIGKILL with {len(contents)} calls in flight (reservations {killed}): {found}")
    assert found.by_status.get("unknown_outcome") == len(contents), f"killed calls not all recorded: {found}"
    with cluster.engine.connect() as conn:
        costs = sorted(
            from_pico(int(c))
            for c in conn.execute(
                text("SELECT cost_usd FROM traces WHERE api_key_id = :k AND status = 'unknown_outcome'"),
                {"k": subject.key_id},
            ).scalars()
        )
    assert costs == sorted(reservation([{"role": "user", "content": c}], max_tokens) for c in contents), costs
    assert found.billed <= found.recorded <= found.billed + killed, found
    assert_settled(found)


def test_redis_counters_deleted_mid_run_the_budget_still_holds(
    healthy: Cluster, ph: Pilothouse, clients: Clients
) -> None:
    """Issue 8.4: counters lost from Redis are re-seeded from the store before admitting against them."""
    cluster = healthy
    content = "x" * 200
    max_tokens = 16
    one = reservation([{"role": "user", "content": content}], max_tokens)
    subject = new_subject(ph, Decimal(1))
    cs = clients(subject)
    for i in range(7):  # most of the budget, one call at a time (each bills ~0.127 USD)
        chat(cs[i % 2], subject, "bill-normal", content, max_tokens)
    before = ledger(cluster, ph, subject)
    redis = require_redis()
    try:
        delete_prefix(redis, cluster.prefix)  # Redis restarted without persistence, or evicted the keys
    finally:
        redis.close()
    results = fan_out(10, lambda i: chat(cs[i % 2], subject, "bill-slow", content, max_tokens))
    assert not unexpected(results), unexpected(results)
    found = settled_ledger(cluster, ph, subject)
    print(f"\ncounters deleted after {before.billed} USD: limit {subject.limit}, reservation {one}: {found}")
    assert found.billed <= subject.limit + one, f"overshoot {found.billed - subject.limit} > {one}: {found}"
    assert found.recorded == found.billed, found
    assert_settled(found)


def test_redis_cut_between_admission_and_settlement_is_settled_after_restore(
    healthy: Cluster, ph: Pilothouse, clients: Clients
) -> None:
    """Issue 8.5: settlements that fail while Redis is away are retried durably; afterwards the budget
    agrees with the traces and with the bill."""
    cluster = healthy
    cluster.upstream.slow_s = 1.5
    subject = new_subject(ph, Decimal(10))
    cs = clients(subject)
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = [pool.submit(chat, cs[i % 2], subject, "bill-slow", f"Answer question {i}.", 8) for i in range(4)]
        cluster.upstream.wait_received(4, subject.user)  # all admitted: the reservations are in Redis
        cluster.proxy.cut()
        ended = [c for c in cluster.upstream.calls(subject.user) if c.ended_at is not None]
        assert not ended, "the cut came after a call had ended: raise slow_s"
        answers = [c.result(timeout=30) for c in calls]  # they finish, and their settle finds no Redis
    time.sleep(1.0)
    cluster.proxy.restore()
    assert all(a.choices for a in answers)
    found = settled_ledger(cluster, ph, subject)
    print(f"\nRedis cut between admission and settlement: {found}")
    assert found.by_status == {"ok": 4}, found
    assert found.recorded == found.billed, found
    assert_settled(found)


def test_a_client_that_disconnects_mid_call_cancels_it_and_its_spend_is_settled(
    healthy: Cluster, ph: Pilothouse
) -> None:
    """Issue 8.6: the upstream call of a client that went away is cancelled (not answered, not retried),
    and what the upstream billed for it is recorded (the reservation: its usage is unknown)."""
    cluster = healthy
    cluster.upstream.slow_s = 4.0
    subject = new_subject(ph, Decimal(10))
    max_tokens = 8
    contents = ["A question the client gives up on.", "A stream the client gives up on."]
    url = cluster.replicas[0].base_url + "/chat/completions"

    def walk_away(i: int) -> Any:
        body = {
            "model": "bill-slow",
            "messages": [{"role": "user", "content": contents[i]}],
            "max_tokens": max_tokens,
            "user": f"{subject.user}-{i}",
            "stream": i == 1,
        }
        with httpx.Client(timeout=0.8, headers={"Authorization": f"Bearer {subject.secret}"}) as client:
            return client.post(url, json=body)  # times out: the connection is closed

    results = fan_out(2, walk_away)
    assert all(isinstance(r, httpx.ReadTimeout) for r in results), results
    calls = cluster.upstream.wait_ended(subject.user, timeout=10)
    found = settled_ledger(cluster, ph, subject, lambda f: sum(f.by_status.values()) >= 2)
    print(f"\nclients that disconnected: upstream calls {[(c.stream, c.client_closed) for c in calls]}: {found}")
    assert len(calls) == 2, f"the upstream was called again for a client that left: {calls}"
    for call in calls:
        assert call.client_closed and call.ended_at is not None, call
        assert call.ended_at - call.received_at < cluster.upstream.slow_s - 1.0, "not cancelled when the client left"
    assert sum(found.by_status.values()) == 2, found
    assert_each_within_reservation(cluster, subject, contents, max_tokens)
    assert_settled(found)


def test_a_trickling_upstream_is_cut_at_the_call_deadline(healthy: Cluster, ph: Pilothouse, clients: Clients) -> None:
    """Issue 8.6: an upstream that sends a byte a second never trips the read timeout; the overall call
    deadline ends the call, and what the upstream billed is recorded."""
    cluster = healthy
    subject = new_subject(ph, Decimal(10))
    max_tokens = 7
    contents = ["Trickle a whole answer.", "Trickle a stream."]
    a, b = clients(subject, timeout=30.0)

    def call(i: int) -> Any:
        started = time.monotonic()
        try:
            user = f"{subject.user}-{i}"
            if i == 0:
                result: Any = chat(a, subject, "bill-trickle", contents[0], max_tokens, user)
            else:
                stream = chat(b, subject, "bill-trickle", contents[1], max_tokens, user, stream=True)
                result = [c for c in stream]
        except openai.APIError as exc:
            result = exc
        return result, time.monotonic() - started

    (whole, t_whole), (streamed, t_stream) = fan_out(2, call)
    print(f"\ntrickling upstream: whole answer ended after {t_whole:.1f}s, stream after {t_stream:.1f}s")
    assert t_whole < CALL_DEADLINE_S + 1.5 and t_stream < CALL_DEADLINE_S + 1.5, (t_whole, t_stream)
    assert isinstance(whole, openai.APIStatusError) and whole.status_code == 504, whole
    assert isinstance(streamed, openai.APIError), f"the stream did not end in an error event: {streamed}"
    calls = cluster.upstream.wait_ended(subject.user, timeout=10)
    found = settled_ledger(cluster, ph, subject, lambda f: sum(f.by_status.values()) >= 2)
    print(f"trickling upstream: {found}")
    assert all(c.client_closed for c in calls), calls  # the gateway closed the upstream connection
    assert_each_within_reservation(cluster, subject, contents, max_tokens)
    assert_settled(found)
