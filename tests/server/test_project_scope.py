"""The cases of the admin-scope finding, one by one: a project's admin manages its own project only; the owner
(the bootstrap key) manages every project, each cross-project action audited; only an owner mints an owner
key, and no key revokes a key above its role. The whole route matrix is walked in test_route_policy.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pilothouse.server.app import create_app
from tests.server.test_route_policy import OWNER_KEY, World, app_settings


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PILOTHOUSE_ADMIN_KEY", OWNER_KEY)
        with TestClient(create_app(app_settings(tmp_path_factory.mktemp("scope")))) as http:
            found = World(http)
            found.populate(found.a)
            found.populate(found.b)
            yield found


def error(world: World, status: int, method: str, path: str, key: str, **kwargs: Any) -> dict[str, Any]:
    response = world.call(method, path, key, **kwargs)
    assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    body: dict[str, Any] = response.json()["error"]
    return body


def test_an_admin_cannot_mint_keys_in_another_project(world: World) -> None:
    admin = world.a.keys["admin"]
    for role in ("admin", "viewer"):
        body = {"name": "intruder", "role": role, "project": world.b.name}
        refused = error(world, 403, "POST", "/api/keys", admin, json=body)
        assert refused["code"] == "cross_project_forbidden" and "owner" in refused["message"]
    # the same answer for a project that does not exist: nothing is revealed
    missing = error(world, 403, "POST", "/api/keys", admin, json={"name": "x", "project": "no-such-project"})
    assert missing["code"] == "cross_project_forbidden"
    assert world.ok("POST", "/api/keys", admin, json={"name": "mine", "role": "admin"})["project_id"] == world.a.id


def test_an_admin_cannot_change_or_read_another_projects_budgets_and_limits(world: World) -> None:
    admin, b = world.a.keys["admin"], world.b
    budget = {"scope": "project", "subject": b.name, "usd": "0", "mode": "hard"}
    assert error(world, 403, "POST", "/api/budgets", admin, json=budget)["param"] == "subject"
    on_b_key = {"scope": "key", "subject": b.key_ids["service"], "usd": "0"}
    assert error(world, 404, "POST", "/api/budgets", admin, json=on_b_key)["param"] == "subject"
    user_in_b = {"scope": "user", "subject": "alice", "usd": "0", "project": b.name}
    assert error(world, 403, "POST", "/api/budgets", admin, json=user_in_b)["param"] == "project"
    error(world, 404, "DELETE", f"/api/budgets/{b.budget_id}", admin)
    error(world, 403, "POST", "/api/limits", admin, json={"scope": "project", "subject": b.id, "rpm": 1})
    error(world, 404, "DELETE", f"/api/limits/{b.limit_id}", admin)
    for path in ("/api/budgets", "/api/limits"):
        mine = world.ok("GET", path, admin)["data"]
        assert mine and {row["project_id"] for row in mine} == {world.a.id}  # no longer every project's
        error(world, 403, "GET", path, admin, params={"project": "all"})
    error(world, 403, "GET", "/api/costs/report", admin, params={"project": b.name})
    error(world, 403, "GET", "/api/audit", admin, params={"project": b.name})
    # B's budget and limit are still there, as they were
    assert b.budget_id in {x["id"] for x in world.ok("GET", "/api/budgets", b.keys["viewer"])["data"]}
    assert b.limit_id in {x["id"] for x in world.ok("GET", "/api/limits", b.keys["viewer"])["data"]}


def test_the_owner_manages_every_project_and_each_visit_is_audited(world: World) -> None:
    a, b = world.a, world.b
    owner = a.keys["owner"]  # an owner key of A, acting on B
    key = world.ok("POST", "/api/keys", owner, json={"name": "ops", "role": "admin", "project": b.name})
    assert key["project_id"] == b.id
    budget = world.ok(
        "POST", "/api/budgets", owner, json={"scope": "user", "subject": "bo", "usd": "5", "project": b.name}
    )
    assert budget["project_id"] == b.id
    both = {row["project_id"] for row in world.ok("GET", "/api/budgets", owner, params={"project": "all"})["data"]}
    assert {a.id, b.id} <= both
    report = world.ok("GET", "/api/costs/report", owner, params={"project": "all", "by": "project"})
    assert {a.name, b.name} <= {g["name"] for g in report["groups"]}
    error(world, 404, "GET", "/api/keys", owner, params={"project": "no-such-project"})

    events = world.ok("GET", "/api/audit", owner, params={"project": b.name, "limit": 1000})["data"]
    created = next(e for e in events if e["action"] == "key.create" and e["target"] == key["id"])
    assert created["project_id"] == b.id and created["actor"] == a.key_ids["owner"]
    assert created["details"] == {"role": "admin", "name": "ops", "cross_project": True, "actor_project": a.id}
    budget_set = next(e for e in events if e["action"] == "budget.set" and e["target"] == budget["id"])
    assert budget_set["details"]["cross_project"] is True and budget_set["details"]["actor_project"] == a.id
    everywhere = world.ok("GET", "/api/audit", owner, params={"project": "all", "limit": 1000})["data"]
    looked = [e for e in everywhere if e["action"] == "budgets.list" and e["actor"] == a.key_ids["owner"]]
    assert looked and looked[-1]["project_id"] is None and looked[-1]["target"] == "all"
    # paging through every project's log ends: reading the log adds nothing to it
    after, pages = 0, 0
    while page := world.ok("GET", "/api/audit", owner, params={"project": "all", "after": after, "limit": 50})["data"]:
        after, pages = page[-1]["seq"], pages + 1
        assert pages < 100, "paging through the audit log does not end"
    assert after == everywhere[-1]["seq"]
    # the owner's own project is not a cross-project visit
    own = world.ok("POST", "/api/keys", owner, json={"name": "home", "role": "viewer"})
    mine = world.ok("GET", "/api/audit", owner, params={"limit": 1000})["data"]
    assert next(e for e in mine if e["target"] == own["id"])["details"] == {"role": "viewer", "name": "home"}


def test_only_an_owner_mints_owner_keys_and_none_revokes_a_higher_role(world: World) -> None:
    a = world.a
    refused = error(world, 403, "POST", "/api/keys", a.keys["admin"], json={"name": "up", "role": "owner"})
    assert "'owner' role" in refused["message"] and refused["param"] == "role"
    minted = world.ok("POST", "/api/keys", a.keys["owner"], json={"name": "second owner", "role": "owner"})
    assert minted["role"] == "owner"
    assert "'owner' role" in error(world, 403, "DELETE", f"/api/keys/{minted['id']}", a.keys["admin"])["message"]
    assert world.ok("DELETE", f"/api/keys/{minted['id']}", a.keys["owner"])["active"] is False


def test_projects_are_the_owners(world: World) -> None:
    for role in ("viewer", "admin"):
        error(world, 403, "POST", "/api/projects", world.a.keys[role], json={"name": "side-project"})
        error(world, 403, "GET", "/api/projects", world.a.keys[role])
    reserved = error(world, 422, "POST", "/api/projects", OWNER_KEY, json={"name": "all"})
    assert "reserved" in reserved["message"]


def test_an_owner_protects_labels_as_an_admin_does(world: World) -> None:
    a = world.a
    path = f"/api/prompts/{a.prompt}/labels/production/protect"
    assert world.ok("POST", path, a.keys["owner"])["protected"] is True
    moved = world.ok("PUT", f"/api/prompts/{a.prompt}/labels/production", a.keys["owner"], json={"version": 2})
    assert moved["version"] == 2
    error(world, 403, "PUT", f"/api/prompts/{a.prompt}/labels/production", a.keys["developer"], json={"version": 1})
    assert world.ok("DELETE", path, a.keys["owner"])["protected"] is False
