"""Guard policies on SQLite and PostgreSQL: versions on change only, disable and enable again, what is in force
across projects, and a project's policy names unique."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from pilothouse.store.engine import Store
from pilothouse.store.policies import (
    active_policies,
    get_policy,
    get_version,
    latest_version,
    list_policies,
    list_versions,
    push_policy,
    set_enabled,
)
from pilothouse.store.projects import create_project
from pilothouse.store.tables import policies


def body(action: str) -> dict[str, object]:
    return {"name": "p", "input": [{"scanner": "pii", "action": action}]}


def test_versions_disable_and_what_is_in_force(store: Store) -> None:
    with store.begin() as conn:
        alpha, beta = create_project(conn, "alpha").id, create_project(conn, "beta").id
        first = push_policy(
            conn, project_id=alpha, name="p", body=body("block"), content_hash="h1", source_text="a", actor="key_1"
        )
        assert (first.created, first.version.version, first.policy.enabled) == (True, 1, True)
        same = push_policy(
            conn,
            project_id=alpha,
            name="p",
            body=body("block"),
            content_hash="h1",
            source_text="a # comment",
            actor="key_1",
        )
        assert (same.created, same.version.version) == (False, 1)
        second = push_policy(
            conn, project_id=alpha, name="p", body=body("flag"), content_hash="h2", source_text="b", actor="key_2"
        )
        assert (second.created, second.version.version) == (True, 2)
        push_policy(
            conn, project_id=beta, name="p", body=body("redact"), content_hash="h3", source_text=None, actor=None
        )
    with store.connect() as conn:
        found = get_policy(conn, alpha, "p")
        assert found is not None
        assert [v.version for v in list_versions(conn, found.id)] == [2, 1]
        one = get_version(conn, found.id, 1)
        assert one is not None and one.body == body("block") and one.source_text == "a"
        assert latest_version(conn, found.id) == second.version
        assert [(p.name, v.version) for p, v in list_policies(conn, alpha)] == [("p", 2)]
        force = {(a.project_id, a.version, a.content_hash) for a in active_policies(conn)}
        assert force == {(alpha, 2, "h2"), (beta, 1, "h3")}
    with store.begin() as conn:
        set_enabled(conn, found, False, "key_3")
    with store.connect() as conn:
        assert [a.project_id for a in active_policies(conn)] == [beta]
        disabled = get_policy(conn, alpha, "p")
        assert disabled is not None and not disabled.enabled and disabled.updated_by == "key_3"
    with store.begin() as conn:
        again = push_policy(
            conn, project_id=alpha, name="p", body=body("flag"), content_hash="h2", source_text="b", actor="key_4"
        )
        assert (again.created, again.enabled_again, again.policy.enabled) == (False, True, True)
    with store.connect() as conn:
        assert len(active_policies(conn)) == 2


def test_a_project_has_one_policy_of_a_name(store: Store) -> None:
    with store.begin() as conn:
        project = create_project(conn, "alpha").id
        push_policy(
            conn, project_id=project, name="p", body=body("block"), content_hash="h", source_text=None, actor=None
        )
    with pytest.raises(IntegrityError), store.begin() as conn:
        conn.execute(
            policies.insert().values(
                id="pol_dup", project_id=project, name="p", enabled=True, created_at=0.0, updated_at=0.0
            )
        )
