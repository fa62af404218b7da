"""/api/tools: the tool registry and the tool allow-lists of the caller's project (docs/tools.md).

Admins register, delete, grant and revoke; every role reads and checks. A key sees and changes only its own
project's tools (another project's tool is a 404, as a missing one), and grants only to keys of its project.
Each change is an audit event and applies on this replica at once (others within `limits.definitions_ttl_s`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import tools as repo
from pilothouse.store.keys import get_key
from pilothouse.tools.constraints import RuleError, parse_rules
from pilothouse.tools.permissions import Caller
from pilothouse.tools.registry import ToolDefinitionError, parse_tools
from pilothouse.tools.rules import check_tool_call

router = APIRouter(prefix="/api", tags=["tools"])


class ToolsRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tools: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=500,
        description="Tool definitions: {name, description, risk, parameters} or the OpenAI request shape plus risk.",
    )


class GrantSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["project", "key", "agent"] = Field(default="project", description="Who the tool is allowed to.")
    subject: str | None = Field(
        default=None, min_length=1, max_length=200, description="The key id (kind key) or agent name (kind agent)."
    )
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=100, description="Argument rules.")


class ToolCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] | str = Field(default_factory=dict, description="The call's arguments (or JSON text).")
    key: str | None = Field(
        default=None, max_length=40, description="Check as this key of the project (default: the caller)."
    )
    agent: str | None = Field(default=None, min_length=1, max_length=200, description="Check as this agent.")


def _tool_or_404(conn: Connection, principal: Principal, name: str) -> repo.ToolRow:
    found = repo.get_tool(conn, principal.project_id, name)
    if found is None:
        raise NotFound(f"no tool {name!r} in this project (list them with `pilothouse tools list`)", param="name")
    return found


def _key_of_project(conn: Connection, principal: Principal, key_id: str, param: str) -> str:
    key = get_key(conn, key_id)
    if key is None or key.project_id != principal.project_id:
        raise NotFound(f"no key {key_id!r} in this project (list them with `pilothouse keys list`)", param=param)
    return key.id


def _audit(conn: Connection, principal: Principal, action: str, target: str, details: dict[str, Any]) -> None:
    append_event(
        conn, actor=principal.key_id, action=action, target=target, project_id=principal.project_id, details=details
    )


def _changed(state: AppState, principal: Principal) -> None:
    if state.tools is not None:
        state.tools.forget(principal.project_id)


@router.post("/tools")
def register_tools(body: ToolsRegister, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Register tools in the caller's project, or update those whose definition changed (version + 1)."""
    require_role(principal, "admin")
    try:
        definitions = parse_tools(body.tools)
    except ToolDefinitionError as exc:
        raise InvalidRequest(str(exc), param="tools") from None
    out = []
    with state.store.begin() as conn:
        for tool in definitions:
            row, change = repo.upsert_tool(
                conn,
                project_id=principal.project_id,
                name=tool.name,
                description=tool.description,
                risk=tool.risk,
                parameters=tool.parameters,
                actor=principal.key_id,
            )
            if change != "unchanged":
                _audit(
                    conn,
                    principal,
                    f"tool.{'register' if change == 'created' else 'update'}",
                    tool.name,
                    {"risk": tool.risk, "version": row.version},
                )
            out.append({**row.to_dict(), "change": change})
    _changed(state, principal)
    return {"data": out}


@router.get("/tools")
def list_registered_tools(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The caller's project's tools, each with its grants."""
    with state.store.connect() as conn:
        rows = repo.list_tools(conn, principal.project_id)
        grants = repo.list_grants(conn, principal.project_id)
    by_tool: dict[str, list[dict[str, Any]]] = {}
    for grant in grants:
        by_tool.setdefault(grant.tool, []).append(grant.to_dict())
    return {"data": [{**row.to_dict(), "grants": by_tool.get(row.name, [])} for row in rows]}


@router.get("/tools/{name}")
def show_tool(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    with state.store.connect() as conn:
        row = _tool_or_404(conn, principal, name)
        grants = repo.list_grants(conn, principal.project_id, name)
    return {**row.to_dict(), "grants": [g.to_dict() for g in grants]}


@router.delete("/tools/{name}")
def delete_tool(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Remove a tool and its grants (its calls are then refused: it is no longer registered)."""
    require_role(principal, "admin")
    with state.store.begin() as conn:
        row = _tool_or_404(conn, principal, name)
        repo.delete_tool(conn, principal.project_id, name)
        _audit(conn, principal, "tool.delete", name, {"version": row.version})
    _changed(state, principal)
    return {"deleted": name}


@router.post("/tools/{name}/grants")
def grant_tool(name: str, body: GrantSet, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Allow the tool to the project, a key of it or an agent, with argument rules (replacing a grant's rules)."""
    require_role(principal, "admin")
    if (body.kind == "project") != (body.subject is None):
        raise InvalidRequest(
            "a grant to a key or an agent names it in 'subject'; a project grant has none", param="subject"
        )
    try:
        rules = [rule.to_dict() for rule in parse_rules(body.rules)]
    except RuleError as exc:
        raise InvalidRequest(str(exc), param="rules") from None
    with state.store.begin() as conn:
        _tool_or_404(conn, principal, name)
        subject = body.subject or ""
        if body.kind == "key":
            subject = _key_of_project(conn, principal, subject, "subject")
        grant, change = repo.set_grant(
            conn,
            project_id=principal.project_id,
            tool=name,
            kind=body.kind,
            subject=subject,
            rules=rules,
            actor=principal.key_id,
        )
        if change != "unchanged":
            _audit(
                conn,
                principal,
                "tool.grant",
                name,
                {"grant": grant.id, "kind": grant.kind, "subject": grant.subject, "rules": rules},
            )
    _changed(state, principal)
    return {**grant.to_dict(), "change": change}


@router.delete("/tools/{name}/grants/{grant_id}")
def revoke_grant(name: str, grant_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.begin() as conn:
        grant = repo.get_grant(conn, principal.project_id, grant_id)
        if grant is None or grant.tool != name:
            raise NotFound(f"no grant {grant_id!r} of tool {name!r} in this project", param="grant_id")
        repo.delete_grant(conn, principal.project_id, grant_id)
        _audit(conn, principal, "tool.revoke", name, {"grant": grant.id, "kind": grant.kind, "subject": grant.subject})
    _changed(state, principal)
    return {"revoked": grant_id}


@router.post("/tools/{name}/check")
def check_tool(name: str, body: ToolCheck, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """The decision the gateway would make on a call of this tool with these arguments (nothing is run)."""
    key_id: str | None = principal.key_id
    with state.store.connect() as conn:
        _tool_or_404(conn, principal, name)
        if body.key is not None:
            key_id = _key_of_project(conn, principal, body.key, "key")
    caller = Caller(
        project_id=principal.project_id, key_id=key_id if body.agent is None or body.key else None, agent=body.agent
    )
    return check_tool_call(state.store, caller, name, body.arguments).to_dict()
