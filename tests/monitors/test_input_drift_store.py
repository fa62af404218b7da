"""Input-drift storage on SQLite and PostgreSQL: the sampler embeds the inputs of the traces in a rule's scope
(and only those whose content was kept), vectors round-trip through int8, windows read as a deterministic
uniform sample, the cursor is a compare-and-set, and pruning keeps only what rules still read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, insert, select, update

from pilothouse.embeddings import load_minilm
from pilothouse.monitors import drift_store
from pilothouse.monitors.drift import drift_series
from pilothouse.monitors.drift_sampler import SETTLE_S, DriftSampler, input_text
from pilothouse.monitors.rules import add_rule, get_rule, pin_reference, remove_rule
from pilothouse.monitors.series import Scope
from pilothouse.store.engine import Store
from pilothouse.store.ids import new_span_id, new_trace_id
from pilothouse.store.projects import create_project
from pilothouse.store.tables import input_embeddings, spans, traces

pytestmark = pytest.mark.model

T0 = 1_700_000_000.0
QUESTIONS = [
    "Where is my order #4411?",
    "How do I reset my password?",
    "Do you ship to Norway?",
    "My invoice for March is wrong.",
    "Can I return the kettle I bought last week?",
    "Is the X200 waterproof?",
]


def _trace(project: str, i: int, *, prompt: str, model: str, tags: list[str], input: Any, kind: str = "llm",
           purged: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    trace_id, ts = new_trace_id(), T0 + i * 10.0
    trace = {
        "id": trace_id,
        "project_id": project,
        "name": "chat",
        "status": "ok",
        "started_at": ts,
        "ended_at": ts + 1.0,
        "input_tokens": 1,
        "output_tokens": 1,
        "cost_usd": 0,
        "model": model,
        "prompt_name": prompt,
        "prompt_version": 1,
        "tags": tags,
        "content_purged_at": ts + 5 if purged else None,
    }
    span = {
        "id": new_span_id(),
        "trace_id": trace_id,
        "project_id": project,
        "kind": kind,
        "name": "step",
        "status": "ok",
        "started_at": ts,
        "ended_at": ts + 1.0,
        "usage_estimated": False,
        "input": input,
    }
    return trace, span


def test_sampler_storage_scope_and_pruning(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "drift-store").id
        other = create_project(conn, "drift-other").id
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    expected: dict[str, str] = {}
    for i, question in enumerate(QUESTIONS * 3):
        parts = i % 2 == 0  # content as a string, or as a list of text parts (OpenAI's two shapes)
        content: Any = [{"type": "text", "text": question}] if parts else question
        message = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]}
        trace, span = _trace(project, i, prompt="support", model="m1", tags=["web", "eu"], input=message)
        rows.append((trace, span))
        expected[trace["id"]] = question
    # Out of scope (other prompt, other tag, other project), content not captured, content purged:
    rows.append(_trace(project, 1, prompt="sales", model="m1", tags=["web"], input={"messages": [
        {"role": "user", "content": "How much is the Pro plan?"}]}))  # fmt: skip
    rows.append(_trace(project, 2, prompt="support", model="m1", tags=["app"], input={"messages": [
        {"role": "user", "content": "The app crashes on start."}]}))  # fmt: skip
    rows.append(_trace(other, 3, prompt="support", model="m1", tags=["web"], input={"messages": [
        {"role": "user", "content": "Another tenant's question."}]}))  # fmt: skip
    rows.append(_trace(project, 4, prompt="support", model="m1", tags=["web"], input=None))
    rows.append(_trace(project, 5, prompt="support", model="m1", tags=["web"], input={"messages": [
        {"role": "user", "content": "Purged by retention."}]}, purged=True))  # fmt: skip
    # An SDK trace: no llm span, its root step's arguments are the input.
    sdk_trace, sdk_span = _trace(project, 6, prompt="support", model="m1", tags=["web"], kind="step",
                                 input={"args": ["Can I pay with PayPal?"], "kwargs": {}})  # fmt: skip
    rows.append((sdk_trace, sdk_span))
    expected[sdk_trace["id"]] = "Can I pay with PayPal?"
    with store.begin() as conn:
        conn.execute(insert(traces), [t for t, _ in rows])
        conn.execute(insert(spans), [s for _, s in rows])
        assert input_text(conn, [sdk_trace["id"]]) == {sdk_trace["id"]: "Can I pay with PayPal?"}
        rule = add_rule(
            conn,
            project_id=project,
            name="support-drift",
            metric="input_drift",
            scope={"prompt": "support", "tag": "web"},
            detector={"bucket_s": 60, "window_s": 600, "baseline_s": 3600, "min_samples": 5, "samples_per_hour": 5000},
        )

    model = load_minilm()
    calls: list[int] = []

    def embed(texts: list[str]) -> Any:
        calls.append(len(texts))
        return model.embed(texts)

    now = T0 + 3600.0
    sampler = DriftSampler(store, embed)
    assert sampler.run_once(now) == len(expected)
    assert sampler.run_once(now) == 0, "a second pass has nothing new"
    assert sum(calls) == len(expected)
    with store.connect() as conn:
        stored = dict(conn.execute(select(input_embeddings.c.trace_id, input_embeddings.c.project_id)).all())
        assert set(stored) == set(expected) and set(stored.values()) == {project}

        # int8 round trip: the cosine with the exact vector stays above 0.999.
        sample = drift_store.read_sample(conn, project, Scope(prompt="support", tag="web"), T0, now, 100)
        exact = model.embed([expected[t] for t in sample.trace_ids])
        cosines = np.sum(sample.vectors * exact, axis=1)
        assert len(sample) == len(expected) and float(cosines.min()) > 0.999

        # A window reads a deterministic uniform sample: the first by trace id, the same every time.
        first = drift_store.read_sample(conn, project, Scope(), T0, now, 5)
        assert first.trace_ids == sorted(expected)[:5]
        assert drift_store.read_sample(conn, project, Scope(), T0, now, 5).trace_ids == first.trace_ids
        assert drift_store.count_rows(conn, project, Scope(tag="eu"), T0, now) == len(expected) - 1
        assert drift_store.count_rows(conn, project, Scope(model="m2"), T0, now) == 0

        # The series: embedded inputs per bucket and the AUC against the preceding window.
        series = drift_series(conn, project, start=T0, end=T0 + 200, bucket_s=100, scope=Scope())
        assert [b.n for b in series.buckets] == [11, 8]
        assert all(b.value is None for b in series.buckets), "no reference before T0"

    # The cursor is a compare-and-set: a replica holding a stale cursor does not move it.
    with store.begin() as conn:
        stale = drift_store.get_cursor(conn, rule.id, project, now)
        assert drift_store.move_cursor(conn, stale, covered_from=stale.covered_from, cursor_at=stale.cursor_at + 1)
        assert not drift_store.move_cursor(conn, stale, covered_from=stale.covered_from, cursor_at=now + 99)

    # Pruning keeps what rules read: a pinned reference survives when its time is long past; without a drift
    # rule, nothing is kept.
    with store.begin() as conn:
        pinned = pin_reference(conn, project, "support-drift", T0, T0 + 60.0, now=now)
        assert pinned is not None and pinned.detector.to_dict()["reference_start"] == T0
        reloaded = get_rule(conn, project, "support-drift")
        assert reloaded is not None and reloaded.detector == pinned.detector
    later = now + 30 * 86_400.0
    # A rule idle for a month jumps its cursor to what its windows read, instead of crawling through the gap.
    assert reloaded is not None and sampler.sample_rule(reloaded, later) == 0
    with store.connect() as conn:
        jumped = drift_store.get_cursor(conn, rule.id, project, 0.0)
        assert jumped.cursor_at == later - SETTLE_S and jumped.covered_from <= T0
    sampler.prune([reloaded], later)
    with store.connect() as conn:
        kept = conn.execute(select(input_embeddings.c.started_at)).scalars().all()
        assert kept and all(T0 <= t < T0 + 60.0 for t in kept)
    with store.begin() as conn:
        assert remove_rule(conn, project, "support-drift") is not None
    sampler.run_once(later)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(input_embeddings)).scalar_one() == 0
        # The removed rule's cursor went with it.
        assert drift_store.get_cursor(conn, rule.id, project, 1.0).cursor_at == 1.0


def test_purged_content_is_never_sampled(store: Store) -> None:
    """Once retention purged a trace's content, the sampler skips it (its spans may still hold stale text)."""
    with store.begin() as conn:
        project = create_project(conn, "drift-purge").id
        trace, span = _trace(project, 0, prompt="p", model="m", tags=[], input={"messages": [
            {"role": "user", "content": "Where is my parcel?"}]})  # fmt: skip
        conn.execute(insert(traces), [trace])
        conn.execute(insert(spans), [span])
        conn.execute(update(traces).where(traces.c.id == trace["id"]).values(content_purged_at=T0 + 5))
        add_rule(conn, project_id=project, name="d", metric="input_drift",
                 detector={"bucket_s": 60, "window_s": 600, "baseline_s": 3600})  # fmt: skip
    assert DriftSampler(store, load_minilm().embed).run_once(T0 + 3600.0) == 0


def test_tag_scope_reads_past_rows_without_tags(store: Store) -> None:
    """A row whose trace had no tags (stored as JSON null, or a scalar) must not break a tag-scoped read on either
    engine: it is simply not in the tag's scope."""
    with store.begin() as conn:
        project = create_project(conn, "p-null-tags").id
        rows = []
        for i, tags in enumerate([None, ["web"], None, ["app", "web"], "web", []]):
            trace, _ = _trace(project, i, prompt="p", model="m", tags=[], input=None)
            rows.append(trace | {"source": None, "tags": tags})
        vectors = np.eye(len(rows), 8, dtype=np.float32)
        assert drift_store.insert_embeddings(conn, rows, vectors, T0) == len(rows)
    with store.connect() as conn:
        assert drift_store.count_rows(conn, project, Scope(tag="web"), T0, T0 + 100) == 2
        assert drift_store.count_rows(conn, project, Scope(tag="app"), T0, T0 + 100) == 1
        assert drift_store.count_rows(conn, project, Scope(), T0, T0 + 100) == len(rows)
