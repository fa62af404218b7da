"""The tool registry and grants in the store (SQLite and PostgreSQL), the rules the gateway reads from them,
and the Python API a workflow engine calls."""

from __future__ import annotations

import asyncio

import pytest

from pilothouse.principal import Principal
from pilothouse.store import tools as repo
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.tools import Caller, ToolRules, check_tool_call

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture
def projects(store: Store) -> tuple[str, str]:
    with store.begin() as conn:
        return create_project(conn, "alpha").id, create_project(conn, "beta").id


def register(store: Store, project_id: str, name: str, **kw: object) -> tuple[repo.ToolRow, str]:
    values = {"description": "", "risk": "low", "parameters": SCHEMA, **kw}
    with store.begin() as conn:
        return repo.upsert_tool(conn, project_id=project_id, name=name, actor="key_admin", **values)  # type: ignore[arg-type]


def test_registering_again_changes_the_version_only_when_the_definition_changed(
    store: Store, projects: tuple[str, str]
) -> None:
    alpha, _ = projects
    row, change = register(store, alpha, "weather")
    assert (change, row.version, row.parameters) == ("created", 1, SCHEMA)
    assert register(store, alpha, "weather")[1] == "unchanged"
    row, change = register(store, alpha, "weather", risk="high")
    assert (change, row.version, row.risk) == ("updated", 2, "high")
    with store.connect() as conn:
        stored = repo.get_tool(conn, alpha, "weather")
    assert stored == row


def test_projects_do_not_see_each_others_tools(store: Store, projects: tuple[str, str]) -> None:
    alpha, beta = projects
    register(store, alpha, "weather")
    register(store, beta, "weather", risk="medium")  # the same name in another project is another tool
    with store.connect() as conn:
        assert [t.risk for t in repo.list_tools(conn, alpha)] == ["low"]
        assert [t.risk for t in repo.list_tools(conn, beta)] == ["medium"]
        assert repo.get_tool(conn, beta, "nothing") is None


def test_grants_are_set_replaced_listed_and_removed_with_their_tool(store: Store, projects: tuple[str, str]) -> None:
    alpha, beta = projects
    register(store, alpha, "weather")
    rules = [{"arg": "city", "enum": ["Oslo"]}]
    with store.begin() as conn:
        grant, change = repo.set_grant(
            conn, project_id=alpha, tool="weather", kind="project", subject="", rules=[], actor=None
        )
        assert change == "created"
        again, change = repo.set_grant(
            conn, project_id=alpha, tool="weather", kind="project", subject="", rules=rules, actor=None
        )
        assert (again.id, again.rules, change) == (grant.id, rules, "updated")
        repo.set_grant(conn, project_id=alpha, tool="weather", kind="agent", subject="triage", rules=[], actor=None)
    with store.connect() as conn:
        assert [(g.kind, g.subject) for g in repo.list_grants(conn, alpha)] == [("agent", "triage"), ("project", "")]
        assert repo.get_grant(conn, beta, grant.id) is None  # not reachable from another project
    with store.begin() as conn:
        assert not repo.delete_grant(conn, beta, grant.id)
        assert repo.delete_grant(conn, alpha, grant.id)
        assert repo.delete_tool(conn, alpha, "weather")
        assert repo.list_grants(conn, alpha) == []
        assert not repo.delete_tool(conn, alpha, "weather")


def test_check_tool_call_reads_the_rules_in_the_store(store: Store, projects: tuple[str, str]) -> None:
    alpha, beta = projects
    principal = Principal("key_1", alpha, "service")
    assert check_tool_call(store, principal, "weather", {}).rule == "unrestricted"  # no rules yet
    register(store, alpha, "weather")
    assert check_tool_call(store, principal, "weather", {"city": "Oslo"}).code == "tool_not_allowed"
    with store.begin() as conn:
        rules = [{"arg": "city", "enum": ["Oslo"]}]
        repo.set_grant(conn, project_id=alpha, tool="weather", kind="agent", subject="triage", rules=rules, actor=None)
    agent = Caller(alpha, agent="triage")
    assert check_tool_call(store, agent, "weather", '{"city": "Oslo"}').allowed
    assert check_tool_call(store, agent, "weather", '{"city": "Rome"}').code == "tool_arguments_invalid"
    assert check_tool_call(store, principal, "weather", {"city": "Oslo"}).code == "tool_not_allowed"
    assert check_tool_call(store, Caller(beta, agent="triage"), "weather", {}).rule == "unrestricted"


def test_the_gateways_copy_is_kept_for_its_ttl_and_dropped_on_forget(store: Store, projects: tuple[str, str]) -> None:
    alpha, _ = projects
    rules = ToolRules(store, ttl_s=3600)

    async def scenario() -> None:
        assert await rules.for_project(alpha) is None  # no rules: remembered as such
        register(store, alpha, "weather")
        assert await rules.for_project(alpha) is None  # still the cached copy
        rules.forget(alpha)
        found, again = await asyncio.gather(rules.for_project(alpha), rules.for_project(alpha))
        assert found is not None and again is found and list(found.tools) == ["weather"]
        decision = await rules.check(Principal("key_1", alpha, "service"), "weather", {"city": "Oslo"})
        assert decision.code == "tool_not_allowed"

    asyncio.run(scenario())
