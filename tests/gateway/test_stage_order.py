"""The pipeline's stages in order, with the fake provider, the real admission (memory limit store, budgets in a
SQLite store) and the real response cache (memory store): the stage list is the documented request path, a
refusal stops before the cache and the upstream, a cache hit skips the route, and settle and trace run on
every path (success, ApiError, cancellation, a caller that left, an abandoned stream)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pilothouse.config import CacheSettings, Deployment, ModelEntry, Settings
from pilothouse.errors import ApiError
from pilothouse.gateway.admission import Admission
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.call import CallerLeft, GatewayCall
from pilothouse.gateway.limits.budgets import budget_status
from pilothouse.gateway.limits.definitions import Definitions
from pilothouse.gateway.limits.memory import MemoryLimitStore
from pilothouse.gateway.limits.worst_case import WorstCaseCalculator
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import STAGES, Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.fake import FakeProvider
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.stages.admission import AdmissionStage
from pilothouse.gateway.stages.base import CallNext, Outcome, RequestContext, Services, Stage, StageFactory
from pilothouse.gateway.stages.cache import CacheStage
from pilothouse.gateway.stages.input_guard import InputGuardStage
from pilothouse.gateway.stages.output_guard import OutputGuardStage
from pilothouse.gateway.stages.prepare import PrepareStage
from pilothouse.gateway.stages.rag import RagStage
from pilothouse.gateway.stages.route import RouteStage
from pilothouse.gateway.stages.settle import SettleStage
from pilothouse.gateway.stages.tool_gate import ToolGateStage
from pilothouse.gateway.stages.trace import TraceStage
from pilothouse.principal import Principal
from pilothouse.store import budgets as repo
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_the_stage_list_is_the_request_path_of_the_architecture_doc() -> None:
    assert (
        TraceStage,
        SettleStage,
        RagStage,
        PrepareStage,
        InputGuardStage,
        ToolGateStage,
        AdmissionStage,
        CacheStage,
        OutputGuardStage,
        RouteStage,
    ) == STAGES
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Request path", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+) \| `gateway/stages/(\w+)\.py`", section, flags=re.MULTILINE)
    assert [name for name, _ in rows] == [
        "trace",
        "settle",
        "rag",
        "prepare",
        "input_guard",
        "tool_gate",
        "admission",
        "cache",
        "output_guard",
        "route",
    ]
    assert [f"{module.title().replace('_', '')}Stage" for _, module in rows] == [stage.__name__ for stage in STAGES]


class Spy:
    """Records which stages a call entered, in order."""

    def __init__(self) -> None:
        self.entered: list[str] = []

    def wrap(self, factory: StageFactory) -> StageFactory:
        def make(services: Services) -> Stage:
            stage = factory(services)
            name = getattr(factory, "__name__", "stage").removesuffix("Stage").lower()
            spy = self

            class Spied:
                async def __call__(self, ctx: RequestContext, call_next: CallNext) -> Outcome:
                    spy.entered.append(name)
                    return await stage(ctx, call_next)

            return Spied()

        return make


class Recorder:
    """A trace sink that keeps what it is given, and what the budget had reserved at that moment."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.traces: list[TraceRecord] = []
        self.reserved_at_store: list[Decimal] = []

    async def write(self, trace: TraceRecord) -> None:
        self.reserved_at_store.append((await self.harness.budget())[1])
        self.traces.append(trace)

    def close(self) -> None:
        pass


class Hooks:
    """A caller that leaves: before the upstream call (`gone`), or while it is awaited (`absorb`)."""

    def __init__(self, *, gone: bool = False, absorb: bool = False) -> None:
        self.gone, self.absorb = gone, absorb
        self.upstream: list[str] = []

    def before_upstream(self) -> None:
        self.upstream.append("before")
        if self.gone:
            raise CallerLeft

    def after_upstream(self) -> None:
        self.upstream.append("after")

    def absorbs_cancel(self) -> bool:
        return self.absorb


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        def deployment(**options: Any) -> Deployment:
            return Deployment(
                provider="fake",
                model="fake-1",
                options=options,
                input_price_per_mtok=Decimal(2),
                output_price_per_mtok=Decimal(8),
                context_window=4096,
            )

        self.settings = Settings(
            include_default_models=False,
            data_dir=tmp_path,
            cache=CacheSettings(enabled=True),
            models=[
                ModelEntry(name="fake-chat", deployments=[deployment()]),
                ModelEntry(name="fake-slow", deployments=[deployment(delay_ms=5000)]),
                ModelEntry(name="fake-failing", deployments=[deployment(fail="bad_request")]),
            ],
        )
        self.store: Store = open_store(f"sqlite:///{tmp_path / 'test.db'}")
        with self.store.begin() as conn:
            self.project = create_project(conn, "p").id
            self.budget_row = repo.set_budget(
                conn,
                project_id=self.project,
                scope="project",
                subject=self.project,
                period="month",
                limit_usd=Decimal(1),
                mode="hard",
                actor=None,
            )[0]
        self.gateway = Gateway(self.settings, ProviderPool(self.settings), default_price_book())
        self.limits = MemoryLimitStore()
        self.admission = Admission(
            self.settings,
            self.limits,
            Definitions(self.store, 60.0),
            WorstCaseCalculator(self.gateway.prices, self.gateway.catalog),
            None,
        )
        self.admission.definitions.reload()
        cache = ResponseCache.from_settings(self.settings)
        assert cache is not None
        self.cache = cache
        self.sink = Recorder(self)
        self.spy = Spy()
        self.pipeline = Pipeline(
            self.gateway,
            self.sink,
            admission=self.admission,
            cache=self.cache,
            stages=[self.spy.wrap(stage) for stage in STAGES],
        )
        self.principal = Principal("key_1", self.project, "service")

    def provider(self, model: str = "fake-chat") -> FakeProvider:
        found = self.gateway.pool.get(self.gateway.catalog[model].deployments[0])
        assert isinstance(found, FakeProvider)
        return found

    async def budget(self) -> tuple[Decimal, Decimal]:
        """(spent, reserved) of the project's budget this period."""
        (row,) = await budget_status(self.limits, self.settings.limits.redis_prefix, [self.budget_row], time.time())
        return Decimal(row["spent_usd"]), Decimal(row["reserved_usd"])

    def call(self, model: str = "fake-chat", text: str = "hello there", **body: Any) -> GatewayCall:
        raw = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 10, **body}
        return GatewayCall(kind="chat", body=raw, principal=self.principal, source="sdk")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    yield h
    await h.admission.aclose()
    await h.cache.aclose()
    await h.gateway.pool.aclose()
    h.store.dispose()


async def test_a_whole_answer_runs_every_stage_and_settles_before_the_trace_is_stored(harness: Harness) -> None:
    outcome = await harness.pipeline.run(harness.call(temperature=0))
    assert outcome.error is None and outcome.payload is not None
    assert outcome.payload["choices"][0]["message"]["content"] == "echo: hello there"
    assert harness.spy.entered == [
        "trace",
        "settle",
        "rag",
        "prepare",
        "inputguard",
        "toolgate",
        "admission",
        "cache",
        "outputguard",
        "route",
    ]
    assert harness.sink.traces == [outcome.trace] and outcome.trace.source == "sdk"
    assert outcome.headers == {"x-pilothouse-cache": "miss"}
    spent, reserved = await harness.budget()
    assert reserved == 0 and spent == outcome.trace.totals()[2] > 0
    assert harness.sink.reserved_at_store == [Decimal(0)]  # settled first, then stored


async def test_a_refusal_at_admission_looks_nothing_up_and_calls_nothing(harness: Harness) -> None:
    with harness.store.begin() as conn:  # a hard budget that one call spends (admitted while something is left)
        repo.set_budget(
            conn,
            project_id=harness.project,
            scope="project",
            subject=harness.project,
            period="month",
            limit_usd=Decimal("0.00001"),
            mode="hard",
            actor=None,
        )
    harness.admission.definitions.reload()
    spending = await harness.pipeline.run(harness.call())
    assert spending.error is None
    spent = (await harness.budget())[0]
    assert spent == spending.trace.totals()[2] > Decimal("0.00001")
    harness.spy.entered.clear()
    outcome = await harness.pipeline.run(harness.call())
    assert outcome.error is not None and outcome.error.code == "budget_exceeded"
    assert harness.spy.entered == ["trace", "settle", "rag", "prepare", "inputguard", "toolgate", "admission"]
    assert len(harness.provider().calls) == 1  # the first call's only
    assert harness.sink.traces[-1] is outcome.trace and len(harness.sink.traces) == 2
    assert outcome.trace.status == "error" and [s.kind for s in outcome.trace.spans] == ["guard"]
    assert await harness.budget() == (spent, Decimal(0))


async def test_a_cache_hit_answers_without_the_route_stage(harness: Harness) -> None:
    first = await harness.pipeline.run(harness.call(temperature=0))
    harness.spy.entered.clear()
    second = await harness.pipeline.run(harness.call(temperature=0))
    assert harness.spy.entered == ["trace", "settle", "rag", "prepare", "inputguard", "toolgate", "admission", "cache"]
    assert len(harness.provider().calls) == 1
    assert second.payload is not None and first.payload is not None
    assert second.payload["choices"] == first.payload["choices"]
    assert second.headers["x-pilothouse-cache"] == "hit" and second.span is not None and second.span.kind == "cache"
    assert [t.id for t in harness.sink.traces] == [first.trace.id, second.trace.id]
    assert (await harness.budget())[1] == 0  # the hit's reservation settled at its cost: nothing


async def test_an_upstream_error_is_traced_and_settled_to_nothing(harness: Harness) -> None:
    outcome = await harness.pipeline.run(harness.call("fake-failing"))
    assert outcome.error is not None and outcome.error.status == 400
    assert outcome.payload is None and outcome.events is None
    (trace,) = harness.sink.traces
    assert trace.id == outcome.trace_id and trace.status == "error"
    assert trace.spans[-1].attributes["error.type"] == outcome.error.code
    assert await harness.budget() == (Decimal(0), Decimal(0))
    assert harness.sink.reserved_at_store == [Decimal(0)]


async def test_a_body_the_face_refused_is_traced_and_nothing_else_runs(harness: Harness) -> None:
    call = harness.call()
    call.refusal = ApiError("the body did not arrive", status=408, code="body_read_timeout")
    outcome = await harness.pipeline.run(call)
    assert outcome.error is call.refusal
    assert harness.spy.entered == ["trace", "settle", "rag", "prepare"]
    (trace,) = harness.sink.traces
    assert [(s.kind, s.name, s.attributes["error.type"]) for s in trace.spans] == [
        ("step", "request", "body_read_timeout")
    ]


async def test_a_cancelled_call_is_settled_and_stored_once(harness: Harness) -> None:
    task = asyncio.create_task(harness.pipeline.run(harness.call("fake-slow")))
    while not harness.provider("fake-slow").calls:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (trace,) = harness.sink.traces
    (span,) = trace.spans
    assert trace.status == "error" and span.error == "request ended before the call completed"
    assert span.attributes["pilothouse.upstream.cancelled"] == "cancelled"
    spent, reserved = await harness.budget()
    assert span.cost_usd is not None and span.cost_usd > 0  # a cut call is charged at its worst case
    assert (spent, reserved) == (span.cost_usd, Decimal(0))
    assert harness.sink.reserved_at_store == [Decimal(0)]


async def test_a_caller_that_left_before_the_upstream_call_makes_none(harness: Harness) -> None:
    hooks = Hooks(gone=True)
    with pytest.raises(CallerLeft):
        await harness.pipeline.run(harness.call(), hooks)
    assert harness.provider().calls == [] and hooks.upstream == ["before"]
    (trace,) = harness.sink.traces
    assert trace.status == "error" and trace.spans[0].attributes["pilothouse.client_disconnected"] is True
    assert await harness.budget() == (Decimal(0), Decimal(0))


async def test_a_cancellation_the_caller_absorbs_is_recorded_as_the_caller_leaving(harness: Harness) -> None:
    hooks = Hooks(absorb=True)
    task = asyncio.create_task(harness.pipeline.run(harness.call("fake-slow"), hooks))
    while not harness.provider("fake-slow").calls:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(CallerLeft):
        await task
    assert hooks.upstream == ["before", "after"]
    (trace,) = harness.sink.traces
    assert trace.spans[0].attributes["pilothouse.client_disconnected"] is True
    assert (await harness.budget())[1] == 0


async def test_a_stream_is_stored_after_its_last_event_and_settled_first(harness: Harness) -> None:
    outcome = await harness.pipeline.run(harness.call(stream=True))
    assert outcome.events is not None and outcome.error is None
    events = [event async for event in outcome.events]
    text = "".join(
        (orjson.loads(e[len(b"data: ") :])["choices"] or [{}])[0].get("delta", {}).get("content") or "" for e in events
    )
    assert text == "echo: hello there"
    assert harness.sink.traces == [outcome.trace] and outcome.trace.status == "ok"
    assert harness.sink.reserved_at_store == [Decimal(0)]
    assert (await harness.budget())[0] == outcome.trace.totals()[2] > 0


async def test_an_abandoned_stream_is_metered_settled_and_stored_as_abandoned(harness: Harness) -> None:
    outcome = await harness.pipeline.run(harness.call(stream=True))
    assert outcome.events is not None
    await anext(outcome.events)
    assert harness.sink.traces == []  # nothing stored while the stream is open
    await outcome.events.aclose()
    (trace,) = harness.sink.traces
    (span,) = trace.spans
    assert span.status == "error" and span.error == "request ended before the call completed"
    assert span.input_tokens == 3  # metered when the stream was closed
    assert harness.sink.reserved_at_store == [Decimal(0)]
