"""The admission and settle stages with the deterministic fake provider, on the memory and Redis limit
stores: rate limits, budgets (hard, soft; per key, project, user, prompt), max_tokens caps, loop guards, and
what refusals leave on the trace and in the audit log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilothouse.audit.chain import list_events
from pilothouse.audit.writer import AuditWriter
from pilothouse.config import Deployment, LimitSettings, ModelEntry, Settings
from pilothouse.errors import ApiError
from pilothouse.gateway.admission import Admission, Ticket
from pilothouse.gateway.limits.budgets import budget_status, seed_budget
from pilothouse.gateway.limits.definitions import Definitions
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.redis_store import RedisLimitStore
from pilothouse.gateway.limits.store import LimitStore
from pilothouse.gateway.limits.worst_case import WorstCaseCalculator
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.store import budgets as repo
from pilothouse.store.engine import Store, open_store
from pilothouse.store.keys import create_key
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.conftest import REDIS_URL

# 2 USD per 1M input tokens, 8 USD per 1M output tokens: a call with 3 input tokens and max_tokens 10
# has a worst case of 3 * 2 + 10 * 8 = 86 micro-dollars.
IN, OUT = Decimal(2), Decimal(8)
WORST_86 = Decimal("0.000086")


def settings_for(prefix: str, **limits: Any) -> Settings:
    def deployment(**options: Any) -> Deployment:
        return Deployment(
            provider="fake",
            model="fake-1",
            context_window=4096,
            input_price_per_mtok=IN,
            output_price_per_mtok=OUT,
            options=options,
        )

    return Settings(
        include_default_models=False,
        limits=LimitSettings(redis_prefix=prefix, **limits),
        models=[
            ModelEntry(name="fake-chat", deployments=[deployment(delay_ms=5)]),
            ModelEntry(name="fake-failing", deployments=[deployment(fail="unavailable")]),
            ModelEntry(
                name="fake-unpriced",
                deployments=[Deployment(provider="openai", model="x", base_url="http://127.0.0.1:9/v1")],
            ),
        ],
    )


class Harness:
    """A gateway with its admission stage, a SQLite store with a project and a key, and helpers."""

    def __init__(self, settings: Settings, store: Store, limit_store: LimitStore) -> None:
        self.settings = settings
        self.store = store
        self.gateway = Gateway(settings, ProviderPool(settings), default_price_book())
        self.audit = AuditWriter(store, spill_path=settings.data_dir / "audit-unstored.jsonl")
        self.admission = Admission(
            settings,
            limit_store,
            Definitions(store, 60.0),
            WorstCaseCalculator(self.gateway.prices, self.gateway.catalog),
            self.audit,
        )
        with store.begin() as conn:
            self.project = create_project(conn, "p").id
            self.key = create_key(conn, project_id=self.project, name="k", role="service")[0].id

    def define(self, kind: str, **fields: Any) -> Any:
        with self.store.begin() as conn:
            if kind == "budget":
                made = repo.set_budget(conn, project_id=self.project, actor=None, **fields)[0]
            else:
                fields = {"rpm": None, "tpm": None, "max_tokens": None, **fields}
                made = repo.set_rate_limit(conn, project_id=self.project, actor=None, **fields)[0]
        self.admission.definitions.reload()
        return made

    async def call(
        self,
        *,
        model: str = "fake-chat",
        content: str = "hello there",
        headers: list[tuple[bytes, bytes]] | None = None,
        prompt: str | None = None,
        **body: Any,
    ) -> tuple[TraceRecord, ApiError | None]:
        """One request through prepare → admission → call → settle, as the server runs it."""
        trace = TraceRecord(project_id=self.project, name="chat", api_key_id=self.key)
        raw = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 10, **body}
        raw = {k: v for k, v in raw.items() if v is not None}
        prep = self.gateway.prepare_chat(raw, trace)
        trace.prompt_name = prompt  # as the prompt hook sets it for `model: "prompt:NAME"`
        ticket: Ticket | None = None
        try:
            ticket = await self.admission.admit(prep, trace, headers or [])
            await self.gateway.chat(prep)
            prep.span.finish()
        except ApiError as exc:
            return trace, exc
        finally:
            if ticket is not None:
                await ticket.settle()
        return trace, None

    def events(self, action: str) -> list[dict[str, Any]]:
        with self.store.connect() as conn:
            return [e.to_dict() for e in list_events(conn, limit=1000) if e.action == action]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("redis")  # fails clearly without Redis; deletes the test's keys afterwards
    return str(request.param)


@pytest.fixture
async def harness(backend: str, tmp_path: Path, prefix: str) -> AsyncIterator[Harness]:
    limit_store: LimitStore = RedisLimitStore.from_url(REDIS_URL) if backend == "redis" else MemoryLimitStore()
    store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
    h = Harness(settings_for(prefix).model_copy(update={"data_dir": tmp_path}), store, limit_store)
    yield h
    h.audit.close()
    await limit_store.aclose()
    store.dispose()


def run_headers(run_id: str, **caps: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-pilothouse-run-id", run_id.encode())]
    for name, value in caps.items():
        headers.append((f"x-pilothouse-run-{name.replace('_', '-')}".encode(), value.encode()))
    return headers


# --------------------------------------------------------------------------------------------- fast path


async def test_nothing_applies_costs_no_store_call(harness: Harness) -> None:
    class Untouchable(MemoryLimitStore):
        async def acquire(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the limit store was called although nothing applies")

    harness.admission.store = Untouchable()
    trace, error = await harness.call()
    assert error is None and trace.spans[0].kind == "llm"
    # A limit on another key does not apply either.
    harness.define("limits", scope="key", subject="key_other", rpm=1)
    assert (await harness.call())[1] is None


async def test_an_unreachable_limit_store_fails_closed(harness: Harness) -> None:
    class Down(MemoryLimitStore):
        async def acquire(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("Redis is down")

    harness.admission.store = Down()
    assert (await harness.call())[1] is None  # nothing applies: not affected
    harness.define("limits", scope="key", subject=harness.key, rpm=100)
    _, error = await harness.call()
    assert error is not None and error.status == 503 and error.code == "limits_unavailable"


# ------------------------------------------------------------------------------------------- rate limits


async def test_rpm_limit_refuses_with_retry_after_and_a_guard_span(harness: Harness) -> None:
    limit = harness.define("limits", scope="key", subject=harness.key, rpm=3)
    results = [await harness.call() for _ in range(4)]
    assert [e is None for _, e in results] == [True, True, True, False]
    trace, error = results[3]
    assert error is not None and error.status == 429 and error.code == "rate_limit_exceeded"
    assert f"key {harness.key} may make 3 requests per minute" in error.message and limit.id in error.message
    assert 55 <= int(error.headers["retry-after"]) <= 60
    assert [s.kind for s in trace.spans] == ["guard"]  # no llm span: no call was made
    assert trace.spans[0].attributes["pilothouse.limits.kind"] == "rpm"
    assert harness.events("budget.refused") == []  # plain rate limiting is not an audit event


async def test_tpm_counts_the_worst_case_then_the_actual_tokens(harness: Harness) -> None:
    # 3 input tokens + max_tokens 10 = 13 reserved; the fake answers "echo: hello there" (3 tokens) = 6 actual.
    harness.define("limits", scope="model", subject="fake-chat", tpm=20)
    first = await harness.call()
    assert first[1] is None
    # 6 used + 13 reserved = 19 <= 20: admitted (it would be refused had the first kept its 13).
    assert (await harness.call())[1] is None
    _, error = await harness.call()
    assert error is not None and "model 'fake-chat' may use 20 tokens per minute" in error.message
    _, never = await harness.call(max_tokens=100)
    assert never is not None and "can never fit" in never.message and never.headers == {"x-should-retry": "false"}


async def test_limits_on_key_project_and_model_all_apply(harness: Harness) -> None:
    harness.define("limits", scope="key", subject=harness.key, rpm=5)
    harness.define("limits", scope="project", subject=harness.project, rpm=2)
    harness.define("limits", scope="model", subject="fake-chat", rpm=5)
    outcomes = [(await harness.call())[1] for _ in range(3)]
    assert outcomes[0] is None and outcomes[1] is None
    assert outcomes[2] is not None and f"project {harness.project}" in outcomes[2].message


# ------------------------------------------------------------------------------------------------ budgets


async def test_hard_budget_holds_under_fifty_concurrent_requests(harness: Harness) -> None:
    budget = harness.define(
        "budget", scope="key", subject=harness.key, period="day", limit_usd=Decimal("0.0005"), mode="hard"
    )
    results = await asyncio.gather(*(harness.call(content=f"question number {i}") for i in range(50)))
    refused = [e for _, e in results if e is not None]
    admitted = [t for t, e in results if e is None]
    spent = sum((t.totals()[2] for t in admitted), Decimal(0))
    worst = Decimal(4 * 2 + 10 * 8) / 10**6  # 4 input tokens ("question number N" + 1) + 10 max_tokens
    assert refused and admitted
    assert spent <= budget.limit_usd + worst
    [row] = await budget_status(harness.admission.store, harness.admission.prefix, [budget], time.time())
    assert Decimal(row["spent_usd"]) == spent and row["reserved_usd"] == "0"
    error = refused[0]
    assert error.status == 429 and error.code == "budget_exceeded"
    assert "daily hard budget of $0.0005" in error.message and "spent" in error.message
    assert "resets at" in error.message and "UTC" in error.message
    assert 0 < int(error.headers["retry-after"]) <= 86_400 and error.headers["x-should-retry"] == "false"
    events = harness.events("budget.refused")
    assert len(events) == len(refused)
    assert events[0]["target"] == budget.id and events[0]["details"]["limit_usd"] == "0.0005"


async def test_errors_release_their_reservation(harness: Harness) -> None:
    budget = harness.define(
        "budget", scope="project", subject=harness.project, period="month", limit_usd=Decimal(1), mode="hard"
    )
    _, error = await harness.call(model="fake-failing")
    assert error is not None and error.status == 502
    [row] = await budget_status(harness.admission.store, harness.admission.prefix, [budget], time.time())
    assert (row["spent_usd"], row["reserved_usd"]) == ("0", "0")


async def test_soft_budget_alerts_once_and_lets_requests_through(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.define("budget", scope="user", subject="alice", period="total", limit_usd=Decimal("0.00002"), mode="soft")
    outcomes = [(await harness.call(user="alice"))[1] for _ in range(4)]
    assert outcomes == [None] * 4
    events = harness.events("budget.soft_exceeded")
    assert len(events) == 1 and events[0]["details"]["subject"] == "alice"
    assert "soft budget exceeded" in caplog.text
    assert (await harness.call(user="bob"))[1] is None  # another user's spend is not alice's


async def test_prompt_budget_applies_to_calls_of_that_prompt(harness: Harness) -> None:
    harness.define("budget", scope="prompt", subject="support", period="day", limit_usd=Decimal(0), mode="hard")
    _, error = await harness.call(prompt="support")
    assert error is not None and "prompt 'support'" in error.message
    assert (await harness.call(prompt="other"))[1] is None
    assert (await harness.call())[1] is None


async def test_hard_budget_needs_a_bounded_cost(harness: Harness) -> None:
    harness.define("budget", scope="key", subject=harness.key, period="day", limit_usd=Decimal(1), mode="hard")
    _, error = await harness.call(model="fake-unpriced")
    assert error is not None and error.status == 403 and error.code == "budget_unenforceable"
    assert "input_price_per_mtok" in error.message
    assert harness.events("budget.refused")[0]["details"]["reason"] == "budget_unenforceable"


async def test_a_new_budget_counts_what_was_already_spent(harness: Harness) -> None:
    trace, _ = await harness.call()
    sink = StoreSink(harness.store, spill_path=harness.settings.data_dir / "spill.jsonl")
    await sink.write(trace)
    sink.close()
    budget = harness.define("budget", scope="key", subject=harness.key, period="day", limit_usd=Decimal(1), mode="hard")
    now = time.time()
    limits, prefix = harness.admission.store, harness.admission.prefix
    assert await seed_budget(limits, harness.store, prefix, budget, now)  # a server starting: not seeded yet
    assert not await seed_budget(limits, harness.store, prefix, budget, now)  # the next one: already seeded
    [row] = await budget_status(harness.admission.store, harness.admission.prefix, [budget], now)
    assert Decimal(row["spent_usd"]) == trace.totals()[2] > 0


# ---------------------------------------------------------------------------------------- max_tokens cap


async def test_max_tokens_above_the_key_cap_is_refused_and_audited(harness: Harness) -> None:
    limit = harness.define("limits", scope="key", subject=harness.key, max_tokens=8)
    _, error = await harness.call(max_tokens=9)
    assert error is not None and error.status == 400 and error.code == "max_tokens_above_cap"
    assert error.param == "max_tokens" and "cap of 8" in error.message
    [event] = harness.events("limits.max_tokens_refused")
    assert event["target"] == limit.id and event["details"]["requested"] == 9
    trace, ok = await harness.call(max_tokens=None)
    assert ok is None
    span = trace.spans[0]
    assert (
        span.attributes["pilothouse.limits.max_tokens_cap"] == 8 and span.attributes["gen_ai.request.max_tokens"] == 8
    )


# -------------------------------------------------------------------------------------------- loop guards


async def test_identical_calls_in_a_run_are_stopped_as_a_loop(harness: Harness) -> None:
    harness.admission.limits = LimitSettings(run_max_repeats=3)
    outcomes = [(await harness.call(headers=run_headers("agent-1")))[1] for _ in range(4)]
    assert outcomes[:3] == [None, None, None]
    error = outcomes[3]
    assert error is not None and error.status == 429 and error.code == "loop_detected"
    assert "run 'agent-1' already made this identical call 3 times" in error.message
    assert error.headers == {"x-should-retry": "false"}
    assert (await harness.call(content="something else", headers=run_headers("agent-1")))[1] is None
    assert (await harness.call(headers=run_headers("agent-2")))[1] is None  # another run
    assert harness.events("loop_guard.refused")[0]["details"]["kind"] == "repeats"


async def test_run_caps_can_only_be_lowered(harness: Harness) -> None:
    harness.admission.limits = LimitSettings(run_max_calls=3, run_max_repeats=None)
    outcomes = [
        (await harness.call(content=f"step {i}", headers=run_headers("r", max_calls="10")))[1] for i in range(4)
    ]
    assert [o is None for o in outcomes] == [True, True, True, False]
    assert outcomes[3] is not None and outcomes[3].code == "run_limit_exceeded" and "cap of 3" in outcomes[3].message
    lowered = [(await harness.call(content=f"step {i}", headers=run_headers("r2", max_calls="1")))[1] for i in range(2)]
    assert lowered[0] is None and lowered[1] is not None


async def test_run_token_and_cost_caps(harness: Harness) -> None:
    # Each call: 3 input + 3 output tokens = 6 tokens, 3 * 2 + 3 * 8 = 30 micro-dollars.
    tokens = [(await harness.call(content=f"hi {i}", headers=run_headers("t", max_tokens="12")))[1] for i in range(3)]
    assert [o is None for o in tokens] == [True, True, False]
    assert tokens[2] is not None and "12 tokens of its cap of 12" in tokens[2].message
    cost = [
        (await harness.call(content=f"hi {i}", headers=run_headers("c", max_cost_usd="0.00005")))[1] for i in range(3)
    ]
    assert [o is None for o in cost] == [True, True, False]
    assert cost[2] is not None and "of its cap of $0.00005" in cost[2].message


async def test_run_headers_are_validated(harness: Harness) -> None:
    _, error = await harness.call(headers=run_headers("x", max_calls="lots"))
    assert error is not None and error.status == 400 and "positive integer" in error.message
    _, error = await harness.call(headers=[(b"x-pilothouse-run-max-calls", b"3")])
    assert error is not None and "need an x-pilothouse-run-id" in error.message
