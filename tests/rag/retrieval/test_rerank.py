"""The LLM rerank step: reading scores, reordering, and a real pipeline call to a fake model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.principal import Principal
from pilothouse.rag.fusion import FusedHit
from pilothouse.rag.rerank import RerankOptions, llm_rerank, read_scores, reorder, rerank_prompt
from pilothouse.tracing.model import TraceRecord


def hits(n: int) -> list[FusedHit]:
    return [FusedHit(f"c{i}", 1.0 - i / 10, f"passage number {i}") for i in range(n)]


def test_read_scores() -> None:
    assert read_scores('{"scores": [1, 9.5, 3]}', 3) == [1.0, 9.5, 3.0]
    assert read_scores('Sure! ```json\n{"scores": [2, 1]}\n```', 2) == [2.0, 1.0]
    assert read_scores('{"scores": [1]}', 2) is None
    assert read_scores('{"scores": [true, 1]}', 2) is None
    assert read_scores("no json here", 1) is None


def test_reorder_keeps_the_unjudged_tail_and_breaks_ties_by_rank() -> None:
    ordered = reorder(hits(4), [1.0, 5.0, 5.0])
    assert [h.id for h in ordered] == ["c1", "c2", "c0", "c3"]
    prompt = rerank_prompt("q?", hits(2), 9)
    assert "Passage 2: passage n" in prompt[1]["content"] and "Question: q?" in prompt[1]["content"]


class _Sink:
    def __init__(self) -> None:
        self.traces: list[TraceRecord] = []

    async def write(self, trace: TraceRecord) -> None:
        self.traces.append(trace)

    def close(self) -> None:
        return None


def pipeline(tmp_path: Path, reply: str) -> tuple[Pipeline, _Sink]:
    deployment = Deployment(provider="fake", model="fake-1", options={"reply": reply})
    settings = Settings(
        include_default_models=False, data_dir=tmp_path, models=[ModelEntry(name="judge", deployments=[deployment])]
    )
    sink = _Sink()
    return Pipeline(Gateway(settings, ProviderPool(settings), default_price_book()), sink), sink


def test_a_rerank_call_goes_through_the_pipeline_into_the_callers_trace(tmp_path: Path) -> None:
    run, sink = pipeline(tmp_path, '{"scores": [0, 2, 9]}')
    principal = Principal("key_1", "proj_1", "service")
    done = asyncio.run(
        llm_rerank(
            run.run,
            principal=principal,
            options=RerankOptions(model="judge", top_n=3),
            query="which passage?",
            hits=hits(4),
            source="http",
            trace_id="f" * 32,
        )
    )
    assert [h.id for h in done.hits] == ["c2", "c1", "c0", "c3"]
    assert done.scores == {"c0": 0.0, "c1": 2.0, "c2": 9.0} and done.error is None
    assert sink.traces[0].id == "f" * 32 and sink.traces[0].name == "rag rerank"
    assert [s.kind for s in sink.traces[0].spans] == ["llm"]


def test_an_unreadable_answer_keeps_the_order(tmp_path: Path) -> None:
    run, _ = pipeline(tmp_path, "passage two is best")
    options = RerankOptions(model="judge", top_n=2)
    done = asyncio.run(
        llm_rerank(
            run.run, principal=Principal("k", "p", "service"), options=options, query="q", hits=hits(3), source="sdk"
        )
    )
    assert [h.id for h in done.hits] == ["c0", "c1", "c2"] and done.error and "no readable scores" in done.error
    missing = RerankOptions(model="no-such-model")
    failed = asyncio.run(
        llm_rerank(
            run.run, principal=Principal("k", "p", "service"), options=missing, query="q", hits=hits(3), source="sdk"
        )
    )
    assert failed.error and failed.error.startswith("the rerank call failed") and len(failed.hits) == 3
