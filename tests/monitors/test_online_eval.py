"""Online evaluation end to end, on SQLite and PostgreSQL: traces written through the real trace sink (with
retrieval spans as context and answers, some grounded, some invented), sampling rules with a rate and a scope,
the scoring pass with the real metrics (MiniLM groundedness, refusal rules): scores land on the right traces
only, the budget bounds a pass, a second replica does not rescore, capture `off` is skipped and counted, and
the hallucination-rate series reads what was written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pilothouse.monitors.online_eval import (
    OnlineEvaluator,
    add_sampling_rule,
    list_sampling_rules,
    online_metric_names,
    sampled,
)
from pilothouse.monitors.series import read_series
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project, set_content_capture
from pilothouse.store.scores import list_scores
from pilothouse.store.tables import scores
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

T0 = 1_700_000_000.0
NOW = T0 + 3600.0

CONTEXT = (
    "Refunds are available within 30 days of purchase. After 30 days, customers can exchange the product "
    "for store credit. Refunds are paid to the original payment method within 5 business days."
)
GROUNDED = [
    "You can get a refund within 30 days of purchase. Refunds go to your original payment method.",
    "After 30 days you can exchange the product for store credit.",
    "Refunds are paid within 5 business days to the original payment method.",
]
UNGROUNDED = [
    "You can get a refund within 90 days. Refunds are sent by cheque from our Berlin office.",
    "Refunds take 45 business days and require a receipt signed by the manager Harold Finch.",
    "Our refund policy was written by Napoleon in 1804 and covers only blue products.",
]
REFUSAL = "I'm sorry, but I can't help with that request."


def _trace(
    project_id: str,
    at: float,
    answer: str,
    *,
    prompt: str = "support",
    model: str = "m1",
    tags: tuple[str, ...] = ("prod",),
    context: str | None = CONTEXT,
) -> TraceRecord:
    trace = TraceRecord(
        project_id=project_id,
        name="chat",
        started_at=at,
        ended_at=at + 1,
        model=model,
        prompt_name=prompt,
        prompt_version=1,
        tags=list(tags),
        source="http",
    )
    if context is not None:
        retrieval = trace.span("retrieval", "search")
        retrieval.started_at, retrieval.ended_at = at, at + 0.1
        retrieval.output = {"documents": [{"id": "policy-1", "text": context}]}
    llm = trace.span("llm", "chat")
    llm.started_at, llm.ended_at, llm.model = at + 0.1, at + 1, model
    llm.input = {"messages": [{"role": "user", "content": "What is your refund policy?"}]}
    llm.output = {"message": {"role": "assistant", "content": answer}}
    return trace


@pytest.fixture
def sink(store: Store, tmp_path: Path) -> StoreSink:
    writer = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    yield writer  # type: ignore[misc]
    writer.close()


def _scores_of(store: Store, project_id: str, name: str | None = None) -> dict[str, float | None]:
    with store.connect() as conn:
        found, _ = list_scores(conn, project_id, name=name, limit=1000)
    return {s.trace_id: s.value for s in found}


def test_a_pass_scores_the_sampled_traces_in_scope_within_budget(store: Store, sink: StoreSink) -> None:
    with store.begin() as conn:
        project = create_project(conn, "shop").id
        add_sampling_rule(
            conn,
            project_id=project,
            name="rag",
            rate=1.0,
            scorers=["groundedness", "refusal"],
            scope={"prompt": "support", "model": "m1", "tag": "prod"},
            budget=4,
            since=T0 - 1,
        )
    good, bad = [], []
    for i, answer in enumerate(GROUNDED + UNGROUNDED):
        trace = _trace(project, T0 + i, answer)
        (good if answer in GROUNDED else bad).append(trace.id)
        sink.write_sync(trace)
    refused = _trace(project, T0 + 10, REFUSAL, context=None)
    out_of_scope = [
        _trace(project, T0 + 11, GROUNDED[0], prompt="other"),
        _trace(project, T0 + 12, UNGROUNDED[0], model="m2"),
        _trace(project, T0 + 13, UNGROUNDED[1], tags=("dev",)),
    ]
    for trace in [refused, *out_of_scope]:
        sink.write_sync(trace)
    too_new = _trace(project, NOW - 1, GROUNDED[1])  # still settling: left for a later pass
    sink.write_sync(too_new)

    evaluator = OnlineEvaluator(store)
    first = evaluator.run_once(NOW)
    assert [r.sampled for r in first] == [4] and first[0].written == 8  # the budget: 4 traces, 2 metrics each
    second = evaluator.run_once(NOW)
    assert second[0].sampled == 3
    assert second[0].skipped == {"groundedness: no retrieved context to check the answer against": 1}
    assert evaluator.run_once(NOW)[0].sampled == 0  # nothing new

    grounded = _scores_of(store, project, "groundedness")
    assert set(grounded) == set(good + bad)  # the refusal had no context; out-of-scope traces untouched
    assert all(grounded[t] is not None and grounded[t] >= 0.5 for t in good), grounded
    assert all(grounded[t] is not None and grounded[t] < 0.5 for t in bad), grounded
    refusals = _scores_of(store, project, "refusal")
    assert set(refusals) == set(good + bad + [refused.id])
    assert refusals[refused.id] == 1.0 and all(refusals[t] == 0.0 for t in good + bad)
    assert not {t.id for t in out_of_scope} & (set(grounded) | set(refusals))
    with store.connect() as conn:
        authors = conn.execute(select(scores.c.author, scores.c.source).distinct()).all()
    assert [tuple(a) for a in authors] == [("online-eval:rag", "code")]

    # The monitors read what was written: 3 of 6 judged answers are ungrounded.
    with store.connect() as conn:
        series = read_series(conn, project, "hallucination_rate", start=T0, end=T0 + 3600, bucket_s=3600)
    bucket = series[0].buckets[0]
    assert bucket.n == 6 and bucket.value == pytest.approx(0.5)

    later = evaluator.run_once(NOW + 10)  # the settled trace now
    assert later[0].sampled == 1 and too_new.id in _scores_of(store, project, "groundedness")


def test_the_rate_samples_the_same_traces_everywhere(store: Store, sink: StoreSink) -> None:
    with store.begin() as conn:
        project = create_project(conn, "sampled").id
        rule = add_sampling_rule(
            conn, project_id=project, name="tenth", rate=0.3, scorers=["refusal"], since=T0 - 1, budget=1000
        )
    ids = []
    for i in range(200):
        trace = _trace(project, T0 + i, REFUSAL if i % 2 else GROUNDED[0], context=None)
        ids.append(trace.id)
        sink.write_sync(trace)
    report = OnlineEvaluator(store).run_once(NOW)[0]
    expected = {t for t in ids if sampled(rule.id, t, 0.3)}
    assert report.considered == 200 and report.sampled == len(expected)
    assert set(_scores_of(store, project)) == expected
    # About 30% of 200 (the ids are random: 60 +- 6.5; outside 30-90 with probability 3e-6; with 40 traces
    # and 4-20 it was 3e-3, and it failed in CI).
    assert 30 <= len(expected) <= 90


def test_a_second_replica_does_not_rescore(store: Store, sink: StoreSink) -> None:
    with store.begin() as conn:
        project = create_project(conn, "replicas").id
        add_sampling_rule(conn, project_id=project, name="all", rate=1.0, scorers=["refusal"], since=T0 - 1)
    for i in range(5):
        sink.write_sync(_trace(project, T0 + i, REFUSAL, context=None))
    with store.connect() as conn:
        (stale,) = list_sampling_rules(conn, project)  # what a second replica read before the first moved on
    first = OnlineEvaluator(store).run_rule(stale, NOW)
    second = OnlineEvaluator(store).run_rule(stale, NOW)
    assert first.written == 5 and second.written == 0 and second.claimed_elsewhere
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scores)).scalar() == 5


def test_capture_off_is_skipped_and_counted(store: Store, sink: StoreSink) -> None:
    with store.begin() as conn:
        project = create_project(conn, "private").id
        set_content_capture(conn, project, "off")
        add_sampling_rule(conn, project_id=project, name="all", rate=1.0, scorers=["groundedness"], since=T0 - 1)
    for i in range(3):
        sink.write_sync(_trace(project, T0 + i, GROUNDED[0]))
    evaluator = OnlineEvaluator(store)
    report = evaluator.run_once(NOW)[0]
    assert report.sampled == 3 and report.written == 0 and report.skipped == {"capture_off": 3}
    assert evaluator.totals["skipped: capture_off"] == 3
    assert _scores_of(store, project) == {}


def test_rules_accept_registry_metrics_and_refuse_others(store: Store) -> None:
    assert {"groundedness", "answer_relevance", "toxicity", "pii", "injection", "refusal"} <= set(online_metric_names())
    with store.begin() as conn:
        project = create_project(conn, "rules").id
        with pytest.raises(ValueError, match=r"unknown scorer 'contains'.*expected answer"):
            add_sampling_rule(conn, project_id=project, name="x", rate=1.0, scorers=["contains"])
        with pytest.raises(ValueError, match="unknown scorer 'nope'"):
            add_sampling_rule(conn, project_id=project, name="x", rate=1.0, scorers=["nope"])
        # A rule stored before the registry, with the old name, still scores groundedness.
        add_sampling_rule(conn, project_id=project, name="old", rate=1.0, scorers=["grounded"])


def test_a_trace_becomes_an_example() -> None:
    """The answer is the last model (or cache) output, the question the last user message it was sent, the
    context every retrieval span's chunks: from our spans and from OpenTelemetry ones alike."""
    from types import SimpleNamespace

    from pilothouse.monitors.online_eval import trace_example

    def row(kind: str, at: float, **fields: object) -> SimpleNamespace:
        base: dict[str, object] = {"input": None, "output": None, "attributes": {}, "started_at": at, "ended_at": at}
        return SimpleNamespace(kind=kind, **(base | fields))

    rows = [
        row("retrieval", 1, output={"chunks": [{"text": "chunk one"}, "chunk two"]}),
        row("retrieval", 2, attributes={"gen_ai.retrieval.documents": [{"id": "d", "text": "otel chunk"}]}),
        row("llm", 3, input={"messages": [{"role": "user", "content": "first?"}]}, output={"message": "draft"}),
        row(
            "llm",
            4,
            input={"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "final?"}]},
            output={"message": {"role": "assistant", "content": "the answer"}},
        ),
        row("guard", 5, output={"decision": "allow"}),
    ]
    example = trace_example(rows)
    assert example is not None
    assert (example.output, example.input) == ("the answer", "final?")
    assert example.context == ("chunk one", "chunk two", "otel chunk")
    assert trace_example([row("retrieval", 1, output={"chunks": ["c"]})]) is None  # no answer kept
