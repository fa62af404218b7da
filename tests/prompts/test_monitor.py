"""The canary rollback monitor on SQLite and PostgreSQL, with fabricated traces and scores: a clearly worse
candidate rolls back (audited, label back on the baseline), an equal one does not, too few samples do not;
every metric; concurrent checks roll back once; the background task."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, insert, update

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.errors import NotFound
from pilothouse.prompts.registry.labels import set_label, set_rollback_rule
from pilothouse.prompts.registry.lookup import Label, get_label
from pilothouse.prompts.registry.push import push_files
from pilothouse.prompts.rollout.canary_check import RollbackRule, canary_split, canary_status, check_label, parse_rule
from pilothouse.prompts.rollout.canary_monitor import CanaryMonitor, check_all
from pilothouse.store.canaries import watched_labels
from pilothouse.store.engine import Store
from pilothouse.store.ids import new_trace_id
from pilothouse.store.projects import create_project
from pilothouse.store.scores import add_score
from pilothouse.store.tables import spans, traces

ACTOR = "key_tester"
PROMPT = "support-answer"


def prompt_file(system: str) -> str:
    return (
        f"name: {PROMPT}\nmodel: fake-chat\nmessages:\n  - role: system\n    content: {system}\n"
        "  - role: user\n    content: '{{ question }}'\nvariables:\n  question: {type: string}\n"
    )


def setup_prompt(store: Store, project: str = "acme") -> str:
    """A project with two versions of the prompt; returns the project id."""
    with store.begin() as conn:
        project_id = create_project(conn, project).id
        for text in ("Answer briefly.", "Answer at length."):
            push_files(conn, project_id=project_id, files=[(f"{PROMPT}.yaml", prompt_file(text))], actor=ACTOR)
    return project_id


def start_canary(
    store: Store, project_id: str, rule: dict[str, Any] | None, *, weight: int = 50, label: str = "production"
) -> Label:
    with store.begin() as conn:
        set_label(
            conn,
            project_id=project_id,
            prompt_name=PROMPT,
            label=label,
            splits=[{"version": 1, "weight": 100 - weight}, {"version": 2, "weight": weight}],
            actor=ACTOR,
            role="developer",
            action="prompt.canary.start",
        )
        return set_rollback_rule(conn, project_id=project_id, prompt_name=PROMPT, label=label, rule=rule, actor=ACTOR)


def add_traces(
    conn: Connection,
    project_id: str,
    version: int,
    count: int,
    *,
    start: float,
    status: str = "ok",
    latency_ms: float | Sequence[float] = 100.0,
    cost: str = "0.001",
    tokens: tuple[int, int] = (20, 10),
    prompt_name: str = PROMPT,
) -> list[str]:
    """Insert `count` finished traces of `prompt_name` at `version`; returns their ids."""
    ids = [new_trace_id() for _ in range(count)]
    latencies = [latency_ms] * count if isinstance(latency_ms, int | float) else list(latency_ms)
    rows = [
        {
            "id": trace_id,
            "project_id": project_id,
            "name": "chat",
            "status": status,
            "started_at": start + i * 0.001,
            "ended_at": start + i * 0.001 + latencies[i] / 1000.0,
            "model": "fake-chat",
            "input_tokens": tokens[0],
            "output_tokens": tokens[1],
            "cost_usd": Decimal(cost),
            "prompt_name": prompt_name,
            "prompt_version": version,
            "tags": None,
        }
        for i, trace_id in enumerate(ids)
    ]
    conn.execute(insert(traces), rows)
    return ids


def score_all(conn: Connection, project_id: str, trace_ids: Sequence[str], values: Sequence[float]) -> None:
    for trace_id, value in zip(trace_ids, values, strict=True):
        add_score(conn, project_id=project_id, trace_id=trace_id, name="helpful", value=value, author=ACTOR)


def rollback_events(store: Store, project_id: str) -> list[Any]:
    with store.connect() as conn:
        return [e for e in list_events(conn, project_id=project_id, limit=1000) if e.action == "prompt.canary.rollback"]


def current_splits(store: Store, project_id: str, label: str = "production") -> list[dict[str, Any]]:
    with store.connect() as conn:
        found = get_label(conn, project_id, PROMPT, label)
    assert found is not None
    return found.splits


HELPFUL = {"metric": "score:helpful", "min_samples": 8, "alpha": 0.05, "baseline": 1}


# ------------------------------------------------------------------------------------------ the decision


def test_a_clearly_worse_candidate_is_rolled_back_and_audited(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 12, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0] * 11 + [0.0])
        score_all(conn, project_id, cand, [0.0] * 9 + [1.0])

    outcome = check_label(store, project_id, PROMPT, "production", actor="key_ops")

    assert outcome.status == "rolled_back" and outcome.rolled_back
    assert outcome.splits == [{"version": 1, "weight": 100}]
    assert current_splits(store, project_id) == [{"version": 1, "weight": 100}]
    decision = outcome.decision
    assert decision is not None and decision.decision == "rollback" and decision.estimate is not None
    assert (decision.estimate.baseline.n, decision.estimate.candidate.n) == (12, 10)
    assert outcome.samples == {"baseline": 12, "candidate": 10}
    (event,) = rollback_events(store, project_id)
    assert event.actor == "key_ops"
    assert event.target == f"prompt:{PROMPT}@production"
    assert event.details["from"] == [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]
    assert event.details["to"] == [{"version": 1, "weight": 100}]
    reason = event.details["reason"]
    assert reason == outcome.reason
    for part in ("score:helpful", "v2", "v1", "n=12", "n=10", "p = ", "rolled back to v1", "mSPRT", "minimum effect"):
        assert part in reason, f"{part!r} not in {reason!r}"
    # the decision's numbers, machine-readable
    details = event.details["decision"]
    assert details["decision"] == "rollback" and details["metric"] == "score:helpful"
    assert details["samples"] == {"baseline": 12, "candidate": 10} and details["min_samples"] == 8
    assert details["baseline"]["n"] == 12 and details["baseline"]["mean"] == pytest.approx(11 / 12)
    assert details["candidate"]["n"] == 10 and details["candidate"]["mean"] == pytest.approx(0.1)
    assert details["difference"] == pytest.approx(0.1 - 11 / 12)
    assert details["interval"]["upper"] < -details["min_effect"]["threshold"] < 0
    assert details["min_effect"] == {"absolute": 0.0, "relative": 0.05, "threshold": pytest.approx(0.05 * 11 / 12)}
    assert details["test"]["name"] == "msprt" and details["test"]["alpha"] == 0.05
    assert details["test"]["p_value"] < 0.05 and details["test"]["log_lr_rollback"] >= details["test"]["threshold"]
    assert details["window"]["since"] == label.updated_at and details["window"]["strata"] == 1
    assert (details["baseline_version"], details["candidate_version"]) == (1, 2)
    with store.connect() as conn:
        assert verify_chain(conn)[1] is None
    # a second check finds no canary any more and does nothing
    again = check_label(store, project_id, PROMPT, "production")
    assert again.status == "no_canary" and len(rollback_events(store, project_id)) == 1


def test_an_equal_candidate_stays(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 12, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 12, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0, 0.0, 1.0] * 4)
        score_all(conn, project_id, cand, [0.0, 1.0, 1.0] * 4)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "continue" and not outcome.rolled_back
    assert outcome.decision is not None and outcome.decision.p_value is not None and outcome.decision.p_value > 0.4
    assert current_splits(store, project_id) == [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]
    assert rollback_events(store, project_id) == []


def test_too_few_samples_wait(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 20, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 7, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0] * 20)
        score_all(conn, project_id, cand, [0.0] * 7)
        add_traces(conn, project_id, 2, 5, start=label.updated_at + 0.01)  # calls without feedback do not count
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "insufficient_samples"
    assert outcome.samples == {"baseline": 20, "candidate": 7}
    assert "waiting for 8 of each" in outcome.message
    assert len(current_splits(store, project_id)) == 2 and rollback_events(store, project_id) == []


def test_traces_before_the_split_and_of_other_prompts_do_not_count(store: Store) -> None:
    project_id = setup_prompt(store)
    with store.begin() as conn:  # a bad history of v2 from an earlier experiment
        old = add_traces(conn, project_id, 2, 10, start=time.time() - 3600)
        score_all(conn, project_id, old, [0.0] * 10)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 10, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01)
        other = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01, prompt_name="other-prompt")
        score_all(conn, project_id, base, [1.0, 0.0] * 5)
        score_all(conn, project_id, cand, [1.0, 0.0] * 5)
        score_all(conn, project_id, other, [0.0] * 10)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "continue" and outcome.samples == {"baseline": 10, "candidate": 10}


def test_a_trace_scored_twice_counts_once_with_its_mean(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {**HELPFUL, "min_samples": 3})
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 3, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 3, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0, 1.0, 0.5])
        score_all(conn, project_id, base, [0.0, 1.0, 0.5])  # a second rater
        score_all(conn, project_id, cand, [1.0, 0.5, 1.0])
        add_score(conn, project_id=project_id, trace_id=cand[0], name="tone", value=0.0)  # another score name
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.decision is not None and outcome.decision.estimate is not None
    estimate = outcome.decision.estimate
    assert estimate.baseline.n == 3 and estimate.baseline.mean == pytest.approx(2 / 3)
    assert estimate.candidate.mean == pytest.approx(2.5 / 3)


@pytest.mark.parametrize("metric", ["error_rate", "latency_ms", "cost_per_request"])
def test_every_metric_rolls_back_a_worse_candidate_and_keeps_an_equal_one(store: Store, metric: str) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {"metric": metric, "min_samples": 20, "alpha": 0.05, "baseline": 1})
    start = label.updated_at + 0.01
    with store.begin() as conn:
        add_traces(conn, project_id, 1, 30, start=start, latency_ms=[100.0 + i for i in range(30)], cost="0.0010")
        add_traces(conn, project_id, 1, 1, start=start, status="error")
        if metric == "error_rate":
            add_traces(conn, project_id, 2, 20, start=start)
            add_traces(conn, project_id, 2, 10, start=start, status="error")
        elif metric == "latency_ms":
            add_traces(conn, project_id, 2, 30, start=start, latency_ms=[140.0 + i for i in range(30)])
        else:
            add_traces(conn, project_id, 2, 30, start=start, cost="0.0013")
            add_traces(conn, project_id, 2, 2, start=start, cost="0.0012")
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "rolled_back", outcome.message
    assert outcome.decision is not None and outcome.decision.decision == "rollback"
    if metric == "error_rate":
        assert outcome.samples == {"baseline": 31, "candidate": 30}
    if metric == "latency_ms":
        assert outcome.samples == {"baseline": 30, "candidate": 30}  # error traces have no latency sample
    (event,) = rollback_events(store, project_id)
    assert metric in event.details["reason"]

    # the same canary with an identical candidate stays
    time.sleep(0.1)  # the first round's fabricated traces end 0.04 s after its split
    label = start_canary(store, project_id, {"metric": metric, "min_samples": 20, "alpha": 0.05, "baseline": 1})
    start = label.updated_at + 0.01
    with store.begin() as conn:
        for version in (1, 2):
            add_traces(conn, project_id, version, 30, start=start, latency_ms=[100.0 + i for i in range(30)])
            add_traces(conn, project_id, version, 2, start=start, status="error")
    assert check_label(store, project_id, PROMPT, "production").status in ("continue", "promote")


def test_a_better_candidate_with_a_90_10_split_stays(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {**HELPFUL, "baseline": None}, weight=10)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 90, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0, 0.0] * 45)
        score_all(conn, project_id, cand, [1.0] * 10)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status in ("continue", "promote")
    assert outcome.split is not None and (outcome.split.baseline, outcome.split.candidate) == (1, 2)
    assert outcome.split.weight == 10


def test_labels_without_a_canary_or_a_rule(store: Store) -> None:
    project_id = setup_prompt(store)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "no_canary" and "v1" in outcome.message
    start_canary(store, project_id, None)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "no_rule" and outcome.split is not None
    with pytest.raises(NotFound):
        check_label(store, project_id, PROMPT, "staging")
    with pytest.raises(NotFound):
        check_label(store, project_id, "no-such-prompt", "production")


# ------------------------------------------------------------------------------------------ concurrency


def test_concurrent_checks_roll_back_exactly_once(store: Store) -> None:
    """Replicas run the same check at the same time: one rolls back, the others see the moved label."""
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 10, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0] * 10)
        score_all(conn, project_id, cand, [0.0] * 10)
    barrier = threading.Barrier(4)
    statuses: list[str] = []

    def replica() -> None:
        barrier.wait()
        statuses.append(check_label(store, project_id, PROMPT, "production").status)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses).count("rolled_back") == 1, statuses
    assert set(statuses) <= {"rolled_back", "changed", "no_canary"}
    assert len(rollback_events(store, project_id)) == 1
    assert current_splits(store, project_id) == [{"version": 1, "weight": 100}]


def test_a_label_moved_during_the_check_is_left_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between evaluating and acting, a person moves the label: the monitor must not overwrite their move."""
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 10, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0] * 10)
        score_all(conn, project_id, cand, [0.0] * 10)
    import pilothouse.prompts.rollout.canary_check as monitor

    real_evaluate = monitor.evaluate

    def evaluate_then_someone_moves_it(conn: Connection, *args: Any) -> Any:
        outcome = real_evaluate(conn, *args)
        with store.begin() as other:
            set_label(
                other,
                project_id=project_id,
                prompt_name=PROMPT,
                label="production",
                splits=[{"version": 2, "weight": 100}],
                actor="key_person",
                role="admin",
            )
        return outcome

    monkeypatch.setattr(monitor, "evaluate", evaluate_then_someone_moves_it)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "changed"
    assert current_splits(store, project_id) == [{"version": 2, "weight": 100}]
    assert rollback_events(store, project_id) == []


# ------------------------------------------------------------------------------------------ the background task


def bad_canary(store: Store, project: str) -> str:
    project_id = setup_prompt(store, project)
    label = start_canary(store, project_id, HELPFUL)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 9, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 9, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0] * 9)
        score_all(conn, project_id, cand, [0.0] * 9)
    return project_id


def test_check_all_covers_every_project_and_survives_a_broken_rule(store: Store) -> None:
    first, second = bad_canary(store, "acme"), bad_canary(store, "globex")
    with store.begin() as conn:  # a rule that cannot be parsed (written around the API) must not stop the rest
        project_id = create_project(conn, "initech").id
        for text in ("A.", "B."):
            push_files(conn, project_id=project_id, files=[(f"{PROMPT}.yaml", prompt_file(text))], actor=ACTOR)
        set_label(
            conn,
            project_id=project_id,
            prompt_name=PROMPT,
            label="production",
            splits=[{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
            actor=ACTOR,
            role="admin",
        )
        set_rollback_rule(
            conn, project_id=project_id, prompt_name=PROMPT, label="production", rule={"metric": "bogus"}, actor=ACTOR
        )
    with store.connect() as conn:
        assert len(watched_labels(conn)) == 3
    outcomes = check_all(store)
    assert sorted(o.status for o in outcomes) == ["invalid_rule", "rolled_back", "rolled_back"]
    (invalid,) = [o for o in outcomes if o.status == "invalid_rule"]
    assert "rollback metric" in invalid.message
    assert current_splits(store, first) == current_splits(store, second) == [{"version": 1, "weight": 100}]
    with store.connect() as conn:
        assert len(watched_labels(conn)) == 1  # only the broken one still splits


async def test_the_background_monitor_rolls_back_by_itself(store: Store) -> None:
    project_id = bad_canary(store, "acme")
    monitor = CanaryMonitor(store, interval_s=0.05)
    monitor.start()
    assert monitor.running
    try:
        deadline = time.monotonic() + 10
        while len(current_splits(store, project_id)) == 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await monitor.stop()
    assert not monitor.running
    assert current_splits(store, project_id) == [{"version": 1, "weight": 100}]
    (event,) = rollback_events(store, project_id)
    assert event.actor == "system:canary-monitor"


async def test_an_interval_of_zero_disables_the_monitor(store: Store) -> None:
    monitor = CanaryMonitor(store, interval_s=0)
    monitor.start()
    assert not monitor.running
    await monitor.stop()


# ------------------------------------------------------------------------------------------ rules and splits


def test_parse_rule() -> None:
    rule = parse_rule({"metric": "score:helpful", "min_samples": 8, "alpha": 0.01, "baseline": 3})
    assert rule == RollbackRule("score:helpful", 8, 0.01, 3)
    tuned = parse_rule({"metric": "latency_ms", "min_effect_abs": 25, "min_effect_rel": 0.1, "bucket_s": 30})
    assert (tuned.min_effect.absolute, tuned.min_effect.relative, tuned.bucket_width_s) == (25.0, 0.1, 30.0)
    assert tuned.to_dict()["min_effect_abs"] == 25.0
    latency = parse_rule({"metric": "latency_ms"})  # the documented defaults
    assert (latency.min_effect.absolute, latency.min_effect.relative, latency.bucket_width_s) == (10.0, 0.05, 60.0)
    assert parse_rule({"metric": "error_rate"}).min_effect.absolute == 0.01
    assert rule.kind == "score" and rule.score_name == "helpful"
    assert rule.to_dict() == {"metric": "score:helpful", "min_samples": 8, "alpha": 0.01, "baseline": 3}
    defaults = parse_rule({"metric": "error_rate"})
    assert (defaults.min_samples, defaults.alpha, defaults.kind, defaults.score_name) == (10, 0.05, "error_rate", None)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"metric": "score:"}, "rollback metric"),
        ({"metric": "tokens"}, "rollback metric"),
        ({"metric": "error_rate", "min_samples": 1}, "min_samples"),
        ({"metric": "error_rate", "min_samples": 2.5}, "min_samples"),
        ({"metric": "error_rate", "min_samples": True}, "min_samples"),
        ({"metric": "error_rate", "alpha": 0}, "alpha"),
        ({"metric": "error_rate", "alpha": 0.9}, "alpha"),
        ({"metric": "error_rate", "baseline": 0}, "baseline"),
        ({"metric": "error_rate", "window": 3}, "unknown"),
        ({"metric": "error_rate", "min_effect_abs": -1}, "min_effect_abs"),
        ({"metric": "error_rate", "min_effect_rel": "5%"}, "min_effect_rel"),
        ({"metric": "error_rate", "bucket_s": 0}, "bucket_s"),
        ({"metric": "error_rate", "min_effect_abs": float("nan")}, "min_effect_abs"),
    ]
    for raw, message in bad:
        with pytest.raises(ValueError, match=message):
            parse_rule(raw)


def test_canary_split_finds_the_baseline() -> None:
    splits = [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}]
    assert canary_split(splits, None) is not None
    split = canary_split(splits, None)
    assert split is not None and (split.baseline, split.candidate, split.weight) == (3, 4, 10)
    even = [{"version": 5, "weight": 50}, {"version": 2, "weight": 50}]
    split = canary_split(even, None)
    assert split is not None and (split.baseline, split.candidate) == (2, 5)  # a tie: the lower version
    split = canary_split(even, RollbackRule("error_rate", baseline=5))
    assert split is not None and (split.baseline, split.candidate) == (5, 2)  # the rule knows better
    assert canary_split([{"version": 1, "weight": 100}], None) is None
    three = [{"version": 1, "weight": 50}, {"version": 2, "weight": 25}, {"version": 3, "weight": 25}]
    assert canary_split(three, None) is None
    odd = [{"version": 1, "weight": 3}, {"version": 2, "weight": 1}]
    split = canary_split(odd, None)
    assert split is not None and split.weight == 25


# ------------------------------------------------------------------------------------------ caller errors


def refuse(conn: Connection, trace_ids: Sequence[str], project_id: str, status: int, code: str) -> None:
    """Put the gateway's record of a refusal on each trace, as server/gateway_asgi.py does."""
    rows = [
        {
            "id": uuid.uuid4().hex[:16],
            "trace_id": trace_id,
            "project_id": project_id,
            "kind": "step",
            "name": "request",
            "status": "error",
            "error": "refused",
            "started_at": time.time(),
            "ended_at": time.time(),
            "usage_estimated": False,
            "attributes": {"error.type": code, "http.response.status_code": status},
        }
        for trace_id in trace_ids
    ]
    conn.execute(insert(spans), rows)


def test_caller_mistakes_do_not_trip_an_error_rate_canary(store: Store) -> None:
    """A client that forgets a variable gets 422s from the candidate: not the version's errors."""
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {"metric": "error_rate", "min_samples": 20, "baseline": 1})
    start = label.updated_at + 0.01
    with store.begin() as conn:
        add_traces(conn, project_id, 1, 40, start=start)
        add_traces(conn, project_id, 2, 40, start=start)
        missing = add_traces(conn, project_id, 2, 40, start=start, status="error")
        refuse(conn, missing, project_id, 422, "missing_variable")
        unauthorised = add_traces(conn, project_id, 1, 3, start=start, status="error")
        refuse(conn, unauthorised, project_id, 401, "invalid_api_key")
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status in ("continue", "promote") and not outcome.rolled_back, outcome.message
    assert outcome.samples == {"baseline": 40, "candidate": 40}
    assert outcome.decision is not None and outcome.decision.caller_errors == {"baseline": 3, "candidate": 40}
    # the same failures as the version's own (an upstream 400 the prompt caused; a 502) do roll it back
    with store.begin() as conn:
        own = add_traces(conn, project_id, 2, 20, start=start, status="error")
        refuse(conn, own[:10], project_id, 400, "context_length_exceeded")
        refuse(conn, own[10:], project_id, 502, "upstream_unavailable")
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "rolled_back", outcome.message
    (event,) = rollback_events(store, project_id)
    assert event.details["decision"]["caller_errors"] == {"baseline": 3, "candidate": 40}
    assert event.details["decision"]["samples"] == {"baseline": 40, "candidate": 60}


def test_prompt_stats_count_caller_errors_apart(store: Store) -> None:
    from pilothouse.prompts.rollout.performance import prompt_performance

    project_id = setup_prompt(store)
    start = time.time() - 60
    with store.begin() as conn:
        add_traces(conn, project_id, 1, 3, start=start)
        refuse(conn, add_traces(conn, project_id, 1, 4, start=start, status="error"), project_id, 422, "bad_variables")
        add_traces(conn, project_id, 1, 1, start=start, status="error")  # a failure with no refusal recorded
    with store.connect() as conn:
        stats = prompt_performance(conn, project_id, PROMPT, since=start - 1)
    total = stats["versions"][0]["total"]
    assert (total["calls"], total["errors"], total["caller_errors"]) == (8, 1, 4)
    assert total["error_rate"] == pytest.approx(1 / 4)


# ------------------------------------------------------------------------------------------ effect size, state


def test_a_tiny_latency_difference_is_not_a_rollback(store: Store) -> None:
    """1 ms slower on 13 ms, with hundreds of samples: significant, but under the minimum effect."""
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {"metric": "latency_ms", "min_samples": 20, "baseline": 1})
    start = label.updated_at + 0.01
    with store.begin() as conn:
        add_traces(conn, project_id, 1, 300, start=start, latency_ms=[12.0 + (i % 10) * 0.1 for i in range(300)])
        add_traces(conn, project_id, 2, 300, start=start, latency_ms=[13.0 + (i % 10) * 0.1 for i in range(300)])
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status in ("continue", "promote") and not outcome.rolled_back, outcome.message
    assert outcome.decision is not None and outcome.decision.min_effect == pytest.approx(10.0)
    assert outcome.decision.lower is not None and outcome.decision.lower > 0.5  # certainly slower, by little
    # with no minimum effect the same data is a rollback
    time.sleep(0.05)
    rule = {"metric": "latency_ms", "min_samples": 20, "baseline": 1, "min_effect_abs": 0, "min_effect_rel": 0}
    label = start_canary(store, project_id, rule)
    start = label.updated_at + 0.01
    with store.begin() as conn:
        add_traces(conn, project_id, 1, 300, start=start, latency_ms=[12.0 + (i % 10) * 0.1 for i in range(300)])
        add_traces(conn, project_id, 2, 300, start=start, latency_ms=[13.0 + (i % 10) * 0.1 for i in range(300)])
    assert check_label(store, project_id, PROMPT, "production").status == "rolled_back"


def decision_events(store: Store, project_id: str) -> list[Any]:
    with store.connect() as conn:
        return [e for e in list_events(conn, project_id=project_id, limit=1000) if e.action == "prompt.canary.decision"]


def test_state_changes_are_audited_once_and_continue_looks_are_not(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {**HELPFUL, "min_effect_abs": 0.2})  # 20 points of helpful rate matter
    start = label.updated_at + 0.01
    assert check_label(store, project_id, PROMPT, "production").status == "insufficient_samples"
    assert decision_events(store, project_id) == []  # collecting: nothing to record
    with store.begin() as conn:
        score_all(conn, project_id, add_traces(conn, project_id, 1, 10, start=start), [1.0, 0.0] * 5)
        score_all(conn, project_id, add_traces(conn, project_id, 2, 10, start=start), [0.0, 1.0] * 5)
    for _ in range(3):  # the monitor looks again and again
        assert check_label(store, project_id, PROMPT, "production").status == "continue"
    (watching,) = decision_events(store, project_id)
    assert watching.actor == "system:canary-monitor" and watching.target == f"prompt:{PROMPT}@production"
    details = watching.details["decision"]
    assert details["state"] == "watching" and details["decision"] == "continue"
    assert details["samples"] == {"baseline": 10, "candidate": 10} and details["interval"]["lower"] < 0
    # much more evidence that they are equal: the candidate may be promoted, recorded once
    with store.begin() as conn:
        score_all(conn, project_id, add_traces(conn, project_id, 1, 400, start=start), [1.0, 0.0] * 200)
        score_all(conn, project_id, add_traces(conn, project_id, 2, 400, start=start), [0.0, 1.0] * 200)
    for _ in range(2):
        assert check_label(store, project_id, PROMPT, "production").status == "promote"
    states = [e.details["decision"]["state"] for e in decision_events(store, project_id)]
    assert states == ["watching", "promote"]
    assert len(current_splits(store, project_id)) == 2  # a recommendation: a person promotes
    with store.connect() as conn:
        status = canary_status(conn, project_id, PROMPT, "production")
    assert status["decision"]["decision"] == "promote"
    assert [e["action"] for e in status["events"]] == [
        "prompt.canary.start",
        "prompt.canary.decision",
        "prompt.canary.decision",
    ]
    with pytest.raises(NotFound), store.connect() as conn:
        canary_status(conn, project_id, PROMPT, "staging")


def test_sticky_users_are_one_cluster_each(store: Store) -> None:
    """Two candidate users, each scoring everything the same way: 20 samples, but only two independent ones."""
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {**HELPFUL, "min_samples": 10})
    start = label.updated_at + 0.01
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 40, start=start)
        cand = add_traces(conn, project_id, 2, 20, start=start)
        score_all(conn, project_id, base, [1.0, 0.0] * 20)
        score_all(conn, project_id, cand, [0.0] * 10 + [1.0] * 10)
        for i, trace_id in enumerate(base):
            conn.execute(update(traces).where(traces.c.id == trace_id).values(user_id=f"b{i}"))
        for i, trace_id in enumerate(cand):
            conn.execute(update(traces).where(traces.c.id == trace_id).values(user_id="grumpy" if i < 10 else "happy"))
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.decision is not None and outcome.decision.estimate is not None
    assert outcome.decision.estimate.candidate.clusters == 2 and outcome.decision.estimate.baseline.clusters == 40
    assert outcome.status == "continue"
