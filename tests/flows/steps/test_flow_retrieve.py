"""The retrieval step: a flow retrieves from a RAG collection of its project through the HTTP route's query
service (access lists, identity rules), records a `retrieval` span under its step span, and hands the hits
(with their flags and citations) and the packed context to a later LLM step; on the SQL checkpoint store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.flows import Engine, Flow
from pilothouse.flows.errors import FlowDefinitionError
from pilothouse.flows.steps.retrieve import RagRetrieval
from pilothouse.store.engine import Store, open_store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.traces import get_trace
from pilothouse.tracing.sink import StoreSink
from tests.flows.steps.fakes import ScriptedModels, answer, last_user
from tests.rag.retrieval.conftest import Corpus, build_corpus


class Ask(BaseModel):
    question: str
    user: str | None = None
    groups: list[str] = []
    chunks: list[dict[str, Any]] = []
    context: str = ""
    answer: str = ""
    route: str = ""


def flagged(state: Ask) -> str:
    """Whether a chunk the model would read (not one the packer dropped) carries a safety flag."""
    return "flagged" if any(c["flags"] and c["citation"] is not None for c in state.chunks) else "clean"


def ask_flow(*, pack: int | dict[str, Any] | None = 600, **retrieve: Any) -> Flow:
    """retrieve -> (flagged? warn : answer): the LLM step reads the packed context."""
    flow = Flow("ask", state=Ask)
    flow.retrieve(
        "find",
        collection=retrieve.pop("collection", "docs"),
        query=lambda s: s.question,
        k=3,
        identity=lambda s: {"user": s.user, "groups": s.groups} if s.user else None,
        pack=pack,
        context="context" if pack else None,
        **retrieve,
    )

    @flow.step()
    def warn(state: Ask, ctx: Any) -> dict[str, Any]:
        return {"route": "warned"}

    flow.llm(
        "answer",
        model="local",
        messages=lambda s: [{"role": "user", "content": f"Context:\n{s.context}\n\nQuestion: {s.question}"}],
        output="answer",
    )
    flow.start("find")
    flow.branch("find", flagged, {"flagged": "warn", "clean": "answer"})
    flow.edge("warn", Flow.END)
    flow.edge("answer", Flow.END)
    return flow


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Corpus]:
    """The retrieval tests' corpus (tests/rag/retrieval/conftest.py) on SQLite."""
    store = open_store(f"sqlite:///{tmp_path / 'rag.db'}")
    yield build_corpus(store, tmp_path / "data")
    store.dispose()


def echo_models() -> ScriptedModels:
    return ScriptedModels(lambda body: answer(f"read {len(last_user(body))} chars"))


def engine(corpus: Corpus, models: ScriptedModels, sink: StoreSink | None = None) -> Engine:
    return Engine(
        SqlCheckpointStore(corpus.store),
        worker="w1",
        models=models,
        retrieval=RagRetrieval(corpus.queries, tracer=sink),
        tracer=sink,
    )


async def test_retrieve_then_llm_on_the_sql_store_with_the_retrieval_span(store: Store, tmp_path: Path) -> None:
    corpus = build_corpus(store, tmp_path / "data")
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    models = echo_models()
    flow = ask_flow(pack={"budget_tokens": 600, "drop_flags": ["injection"]})
    try:
        runner = engine(corpus, models, sink)
        data = {"question": "how do I rotate the production API keys", "user": "bob", "groups": ["ops"]}
        run = runner.start(flow, data, project_id=corpus.project_id)
        done = await runner.run(flow, run.id)
    finally:
        sink.close()
    assert done.status == "succeeded", done.error
    chunks = done.state["chunks"]
    assert chunks[0]["source"] == "ops-keys" and "rotate-keys" in chunks[0]["text"]
    assert set(chunks[0]) >= {"id", "text", "score", "source", "flags", "citation"}
    assert all(c["citation"] is None for c in chunks if c["flags"])  # a flagged chunk is not packed
    cited = [c for c in chunks if c["citation"] is not None]
    assert cited and all(f"[{c['citation']}]" in done.state["context"] for c in cited)
    assert done.state["route"] == "" and done.state["answer"].startswith("read ")  # the LLM step ran
    assert "rotate-keys job" in last_user(models.bodies[0]) and "wire money" not in last_user(models.bodies[0])

    with store.connect() as conn:
        trace = get_trace(conn, corpus.project_id, done.trace_id or "")
    assert trace is not None
    by_id = {s["id"]: s for s in trace["spans"]}
    retrieval = next(s for s in trace["spans"] if s["kind"] == "retrieval")
    assert by_id[retrieval["parent_id"]]["name"] == "find" and by_id[retrieval["parent_id"]]["kind"] == "step"
    assert retrieval["input"]["identity"] == {"user": "bob", "groups": ["ops"]}
    assert retrieval["attributes"]["pilothouse.retrieval.collection"] == "docs"
    assert retrieval["attributes"]["pilothouse.flow.run_id"] == run.id
    assert [h["id"] for h in retrieval["output"]["hits"]] == [c["id"] for c in chunks]
    step = by_id[retrieval["parent_id"]]
    assert step["attributes"]["pilothouse.retrieval.span_id"] == retrieval["id"]


async def test_a_flow_acting_for_one_group_never_gets_another_groups_chunk(corpus: Corpus) -> None:
    flow = ask_flow(pack=None)
    runner = engine(corpus, echo_models())
    seen: dict[str, set[str]] = {}
    for who, groups in (("sam", ["sales"]), ("bob", ["ops"]), (None, [])):
        for question in ("enterprise plan discount off the list price", "rotate the production API keys"):
            data = {"question": question, "user": who, "groups": groups}
            run = runner.start(flow, data, project_id=corpus.project_id)
            done = await runner.run(flow, run.id)
            assert done.status == "succeeded", done.error
            seen.setdefault(who or "key", set()).update(c["source"] for c in done.state["chunks"])
            assert [c["citation"] for c in done.state["chunks"]] == list(range(1, len(done.state["chunks"]) + 1))
    assert "sales-prices" in seen["sam"] and "ops-keys" not in seen["sam"]
    assert "ops-keys" in seen["bob"] and "sales-prices" not in seen["bob"]
    assert not {"ops-keys", "sales-prices", "ana-review"} & seen["key"]  # the run's key reads open documents only


async def test_injection_flags_reach_the_state_and_a_branch_acts_on_them(corpus: Corpus) -> None:
    models = echo_models()
    flow = ask_flow()
    runner = engine(corpus, models)
    run = runner.start(flow, {"question": "when do orders ship"}, project_id=corpus.project_id)
    done = await runner.run(flow, run.id)
    assert done.status == "succeeded", done.error
    shipping = next(c for c in done.state["chunks"] if c["source"] == "shipping")
    assert shipping["flags"] == ["injection"]
    assert done.state["route"] == "warned" and models.bodies == []  # the flagged chunk never reached the model
    find = SqlCheckpointStore(corpus.store).checkpoints(run.id)[0]
    assert find.step == "find" and shipping["id"] in find.output["flagged"]


async def test_dropping_flagged_chunks_when_packing(corpus: Corpus) -> None:
    flow = ask_flow(pack={"budget_tokens": 600, "drop_flags": ["injection"]})
    runner = engine(corpus, echo_models())
    run = runner.start(flow, {"question": "when do orders ship"}, project_id=corpus.project_id)
    done = await runner.run(flow, run.id)
    shipping = next(c for c in done.state["chunks"] if c["source"] == "shipping")
    assert shipping["citation"] is None and shipping["dropped"] == "flagged"
    assert "wire money" not in done.state["context"] and done.state["context"]
    assert done.status == "succeeded" and done.state["route"] == "" and done.state["answer"]


async def test_refusals_end_the_run_with_a_clear_error(corpus: Corpus) -> None:
    runner = engine(corpus, echo_models())
    everything = Flow("all", state=Ask)
    everything.retrieve("find", collection="docs", query=lambda s: s.question, identity={"all": True})
    everything.start("find")
    everything.edge("find", Flow.END)
    run = runner.start(everything, {"question": "price"}, project_id=corpus.project_id)
    done = await runner.run(everything, run.id)
    assert done.status == "failed" and done.error is not None
    assert "only admin keys" in done.error["message"] and done.error["step"] == "find"

    missing = ask_flow(collection="nope")
    run = runner.start(missing, {"question": "price"}, project_id=corpus.project_id)
    done = await runner.run(missing, run.id)
    assert done.status == "failed" and done.error is not None
    assert "'nope'" in done.error["message"] and "404" in done.error["message"]

    bare = Engine(SqlCheckpointStore(corpus.store), worker="w1", models=echo_models())
    run = bare.start(ask_flow(), {"question": "price"}, project_id=corpus.project_id)
    done = await bare.run(ask_flow(), run.id)
    assert done.status == "failed" and done.error is not None and "no RAG query service" in done.error["message"]


def test_bad_definitions_are_refused_when_the_flow_is_built() -> None:
    flow = Flow("bad", state=Ask)
    with pytest.raises(FlowDefinitionError, match=r"step 'a'.*mode"):
        flow.retrieve("a", collection="docs", query=lambda s: s.question, mode="fuzzy")
    with pytest.raises(FlowDefinitionError, match=r"step 'b'.*k"):
        flow.retrieve("b", collection="docs", query=lambda s: s.question, k=0)
    with pytest.raises(FlowDefinitionError, match="_acl"):
        flow.retrieve("c", collection="docs", query="x", filters={"equals": {"_acl": "g:ops"}})
    with pytest.raises(FlowDefinitionError, match="context="):
        flow.retrieve("d", collection="docs", query="x", context="context")
    with pytest.raises(FlowDefinitionError, match="collection="):
        flow.retrieve("e", collection="", query="x")
    with pytest.raises(FlowDefinitionError, match="identity"):
        flow.retrieve("f", collection="docs", query="x", identity={"role": "admin"})
