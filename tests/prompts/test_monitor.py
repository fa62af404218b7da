"""The canary rollback monitor on SQLite and PostgreSQL, with fabricated traces and scores: a clearly worse
candidate rolls back (audited, label back on the baseline), an equal one does not, too few samples do not;
every metric; concurrent checks roll back once; the background task."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, insert

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.errors import NotFound
from pilothouse.prompts import registry
from pilothouse.prompts.monitor import (
    CanaryMonitor,
    RollbackRule,
    canary_split,
    check_all,
    check_label,
    parse_rule,
    watched_labels,
)
from pilothouse.store.engine import Store
from pilothouse.store.ids import new_trace_id
from pilothouse.store.projects import create_project
from pilothouse.store.scores import add_score
from pilothouse.store.tables import traces

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
            registry.push_files(conn, project_id=project_id, files=[(f"{PROMPT}.yaml", prompt_file(text))], actor=ACTOR)
    return project_id


def start_canary(
    store: Store, project_id: str, rule: dict[str, Any] | None, *, weight: int = 50, label: str = "production"
) -> registry.Label:
    with store.begin() as conn:
        registry.set_label(
            conn,
            project_id=project_id,
            prompt_name=PROMPT,
            label=label,
            splits=[{"version": 1, "weight": 100 - weight}, {"version": 2, "weight": weight}],
            actor=ACTOR,
            role="developer",
            action="prompt.canary.start",
        )
        return registry.set_rollback_rule(
            conn, project_id=project_id, prompt_name=PROMPT, label=label, rule=rule, actor=ACTOR
        )


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
        found = registry.get_label(conn, project_id, PROMPT, label)
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
    assert outcome.comparison is not None and outcome.comparison.worse
    assert outcome.comparison.test == "welch_t"
    assert (outcome.comparison.baseline_n, outcome.comparison.canary_n) == (12, 10)
    assert outcome.samples == {"baseline": 12, "candidate": 10}
    (event,) = rollback_events(store, project_id)
    assert event.actor == "key_ops"
    assert event.target == f"prompt:{PROMPT}@production"
    assert event.details["from"] == [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]
    assert event.details["to"] == [{"version": 1, "weight": 100}]
    reason = event.details["reason"]
    assert reason == outcome.reason
    for part in ("score:helpful", "v2", "v1", "n=12", "n=10", "p = ", "rolled back to v1", "Welch"):
        assert part in reason, f"{part!r} not in {reason!r}"
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
    assert outcome.status == "not_worse" and not outcome.rolled_back
    assert outcome.comparison is not None and outcome.comparison.p_value > 0.4
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
    assert outcome.status == "not_worse" and outcome.samples == {"baseline": 10, "candidate": 10}


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
    assert outcome.comparison is not None
    assert outcome.comparison.baseline_n == 3 and outcome.comparison.baseline_mean == pytest.approx(2 / 3)
    assert outcome.comparison.canary_mean == pytest.approx(2.5 / 3)


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
    assert outcome.comparison is not None
    expected_test = {"error_rate": "two_proportion_z", "latency_ms": "mann_whitney_u", "cost_per_request": "welch_t"}
    assert outcome.comparison.test == expected_test[metric]
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
    assert check_label(store, project_id, PROMPT, "production").status == "not_worse"


def test_a_better_candidate_with_a_90_10_split_stays(store: Store) -> None:
    project_id = setup_prompt(store)
    label = start_canary(store, project_id, {**HELPFUL, "baseline": None}, weight=10)
    with store.begin() as conn:
        base = add_traces(conn, project_id, 1, 90, start=label.updated_at + 0.01)
        cand = add_traces(conn, project_id, 2, 10, start=label.updated_at + 0.01)
        score_all(conn, project_id, base, [1.0, 0.0] * 45)
        score_all(conn, project_id, cand, [1.0] * 10)
    outcome = check_label(store, project_id, PROMPT, "production")
    assert outcome.status == "not_worse"
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
    from pilothouse.prompts import monitor

    real_evaluate = monitor.evaluate

    def evaluate_then_someone_moves_it(conn: Connection, *args: Any) -> Any:
        outcome = real_evaluate(conn, *args)
        with store.begin() as other:
            registry.set_label(
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
            registry.push_files(conn, project_id=project_id, files=[(f"{PROMPT}.yaml", prompt_file(text))], actor=ACTOR)
        registry.set_label(
            conn,
            project_id=project_id,
            prompt_name=PROMPT,
            label="production",
            splits=[{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
            actor=ACTOR,
            role="admin",
        )
        registry.set_rollback_rule(
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
