"""An LLM step on the bundled local model (SmolLM2-135M through llama.cpp), through the gateway in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from pilothouse.config import LOCAL_CHAT_MODEL, LocalModelSettings, Settings
from pilothouse.flows.calls import GatewayModelCalls
from pilothouse.flows.engine import Engine
from pilothouse.flows.graph import Flow
from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.traces import get_trace
from pilothouse.tracing.sink import StoreSink

pytestmark = pytest.mark.model


class Ticket(BaseModel):
    text: str
    reply: str = ""


@pytest.fixture
async def engine_and_project(tmp_path: Path) -> AsyncIterator[tuple[Engine, str, Store]]:
    settings = Settings(data_dir=tmp_path / "data", local=LocalModelSettings(n_ctx=1024))
    store = open_store(f"sqlite:///{tmp_path / 'flows.db'}")
    resolver = PromptResolver(store)
    pool = ProviderPool(settings)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    with store.begin() as conn:
        project = create_project(conn, "local")
    models = GatewayModelCalls(Pipeline(Gateway(settings, pool, default_price_book(), resolver), sink))
    yield Engine(MemoryCheckpointStore(), worker="w", models=models, tracer=sink), project.id, store
    await pool.aclose()
    sink.close()
    resolver.close()
    store.dispose()


async def test_an_llm_step_answers_with_the_local_model(engine_and_project: tuple[Engine, str, Store]) -> None:
    engine, project_id, store = engine_and_project
    flow = Flow("reply", state=Ticket, budget={"model_calls": 2})
    flow.llm(
        "reply",
        model=LOCAL_CHAT_MODEL,
        messages=lambda s: [{"role": "user", "content": f"Reply in one short sentence: {s.text}"}],
        output="reply",
        params={"max_tokens": 12, "temperature": 0},
    )
    flow.start("reply")
    flow.edge("reply", Flow.END)
    run = engine.start(flow, {"text": "My parcel arrived broken."}, project_id=project_id)
    run = await engine.run(flow, run.id)
    assert run.status == "succeeded", run.error
    assert run.state["reply"].strip() and run.spent["model_calls"] == 1 and run.spent["tokens"] > 0
    (checkpoint,) = engine.store.checkpoints(run.id)
    assert checkpoint.output["model"] == LOCAL_CHAT_MODEL and checkpoint.output["output_tokens"] <= 12
    with store.connect() as conn:
        trace = get_trace(conn, project_id, run.trace_id or "")
    assert trace is not None and trace["source"] == "flow"
    by_kind = {s["kind"]: s for s in trace["spans"]}
    assert by_kind["llm"]["parent_id"] == by_kind["step"]["id"] and by_kind["llm"]["model"] == LOCAL_CHAT_MODEL
