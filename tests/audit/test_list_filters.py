"""Filtering the audit log by action (an action and the ones under it) and by time, with the project and `after`
bounds still applied, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from pilothouse.audit.chain import append_event, list_events, verify_chain
from pilothouse.store.engine import Store
from pilothouse.store.tables import audit_events

ACTIONS = [
    ("prompt.label.move", "proj_a"),
    ("prompt.label.protect", "proj_a"),
    ("prompt.labels", "proj_a"),  # shares a prefix with `prompt.label`, but is not under it
    ("budget.soft_exceeded", "proj_a"),
    ("key.create", "proj_a"),
    ("key.create", "proj_b"),
    ("prompt.version.create", "proj_a"),
]


def _fill(store: Store) -> None:
    for i, (action, project) in enumerate(ACTIONS, start=1):
        with store.begin() as conn:
            append_event(conn, actor="key_x", action=action, target=f"t{i}", project_id=project)
        with store.begin() as conn:  # a known time per event: 1000, 2000, ... (the chain is not rechecked here)
            conn.execute(update(audit_events).where(audit_events.c.seq == i).values(ts=1000.0 * i))


def _actions(store: Store, **filters: object) -> list[str]:
    with store.connect() as conn:
        return [e.action for e in list_events(conn, **filters)]  # type: ignore[arg-type]


def test_an_action_matches_itself_and_the_actions_under_it(store: Store) -> None:
    _fill(store)
    assert _actions(store, actions=["prompt.label"]) == ["prompt.label.move", "prompt.label.protect"]
    assert _actions(store, actions=["prompt.label.move"]) == ["prompt.label.move"]
    assert _actions(store, actions=["prompt"]) == [
        "prompt.label.move",
        "prompt.label.protect",
        "prompt.labels",
        "prompt.version.create",
    ]
    assert _actions(store, actions=["key.create", "budget"]) == ["budget.soft_exceeded", "key.create", "key.create"]
    assert _actions(store, actions=["prompt.lab"]) == []  # segments, not characters


def test_like_wildcards_in_a_filter_are_literal(store: Store) -> None:
    _fill(store)
    assert _actions(store, actions=["prompt_label"]) == []  # `_` would match the `.` in a LIKE pattern
    assert _actions(store, actions=["prompt%"]) == []
    assert _actions(store, actions=["budget.soft_exceeded"]) == ["budget.soft_exceeded"]


def test_time_bounds_with_project_and_after(store: Store) -> None:
    _fill(store)
    assert _actions(store, since=2000.0, until=4000.0) == ["prompt.label.protect", "prompt.labels"]
    assert _actions(store, since=6000.0) == ["key.create", "prompt.version.create"]
    assert _actions(store, until=1000.0) == []
    assert _actions(store, actions=["key"], project_id="proj_b") == ["key.create"]
    with store.connect() as conn:
        events = list_events(conn, actions=["key"], project_id="proj_a", after_seq=4, since=0.0)
        assert [(e.seq, e.project_id) for e in events] == [(5, "proj_a")]
        assert [e.seq for e in list_events(conn, after_seq=2, limit=2, since=1000.0)] == [3, 4]


def test_filters_do_not_touch_the_chain(store: Store) -> None:
    for action in ("key.create", "project.create"):
        with store.begin() as conn:
            append_event(conn, actor="key_x", action=action)
    with store.connect() as conn:
        assert [e.action for e in list_events(conn, actions=["project"])] == ["project.create"]
        assert verify_chain(conn) == (2, None)


def test_actor_and_target_filters(store: Store) -> None:
    for actor, target in (("key_a", "t1"), ("key_b", "t1"), ("key_a", "t2")):
        with store.begin() as conn:
            append_event(conn, actor=actor, action="key.create", target=target, project_id="proj_a")
    with store.connect() as conn:
        assert [e.seq for e in list_events(conn, actor="key_a")] == [1, 3]
        assert [e.seq for e in list_events(conn, target="t1")] == [1, 2]
        assert [e.seq for e in list_events(conn, actor="key_a", target="t1")] == [1]
        assert list_events(conn, actor="key_%") == []  # exact, not a pattern
