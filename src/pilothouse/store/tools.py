"""The tool registry and tool grants of each project (tables `tools` and `tool_grants`).

Plain rows: the definitions are checked (schema, rules) by `pilothouse.tools` before they get here. Grants of
a tool go with it when it is deleted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import Connection, delete, insert, select, update

from pilothouse.store.ids import new_id
from pilothouse.store.tables import tool_grants, tools

Change = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class ToolRow:
    id: str
    project_id: str
    name: str
    description: str
    risk: str
    parameters: dict[str, Any]
    version: int
    created_at: float
    updated_at: float
    updated_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: str
    project_id: str
    tool: str
    kind: str
    subject: str
    rules: list[dict[str, Any]]
    created_at: float
    created_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tool(row: Any) -> ToolRow:
    return ToolRow(
        row.id,
        row.project_id,
        row.name,
        row.description,
        row.risk,
        dict(row.parameters),
        row.version,
        row.created_at,
        row.updated_at,
        row.updated_by,
    )


def _grant(row: Any) -> GrantRow:
    return GrantRow(
        row.id, row.project_id, row.tool, row.kind, row.subject, list(row.rules), row.created_at, row.created_by
    )


def get_tool(conn: Connection, project_id: str, name: str) -> ToolRow | None:
    row = conn.execute(select(tools).where(tools.c.project_id == project_id, tools.c.name == name)).first()
    return None if row is None else _tool(row)


def list_tools(conn: Connection, project_id: str) -> list[ToolRow]:
    query = select(tools).where(tools.c.project_id == project_id).order_by(tools.c.name)
    return [_tool(r) for r in conn.execute(query)]


def upsert_tool(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    description: str,
    risk: str,
    parameters: dict[str, Any],
    actor: str | None,
) -> tuple[ToolRow, Change]:
    """Register a tool, or update it when its definition changed (its version goes up by one)."""
    now = time.time()
    found = get_tool(conn, project_id, name)
    if found is None:
        values: dict[str, Any] = {
            "id": new_id("tool"),
            "project_id": project_id,
            "name": name,
            "description": description,
            "risk": risk,
            "parameters": parameters,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "updated_by": actor,
        }
        conn.execute(insert(tools).values(**values))
        return ToolRow(**values), "created"
    if (found.description, found.risk, found.parameters) == (description, risk, parameters):
        return found, "unchanged"
    changes = {
        "description": description,
        "risk": risk,
        "parameters": parameters,
        "version": found.version + 1,
        "updated_at": now,
        "updated_by": actor,
    }
    conn.execute(update(tools).where(tools.c.id == found.id).values(**changes))
    return ToolRow(**{**found.to_dict(), **changes}), "updated"


def delete_tool(conn: Connection, project_id: str, name: str) -> bool:
    """Remove a tool and its grants; False when the project has no such tool."""
    conn.execute(delete(tool_grants).where(tool_grants.c.project_id == project_id, tool_grants.c.tool == name))
    result = conn.execute(delete(tools).where(tools.c.project_id == project_id, tools.c.name == name))
    return result.rowcount > 0


def set_grant(
    conn: Connection,
    *,
    project_id: str,
    tool: str,
    kind: str,
    subject: str,
    rules: list[dict[str, Any]],
    actor: str | None,
) -> tuple[GrantRow, Change]:
    """Grant `tool` to a subject with these argument rules (replacing the rules of an existing grant)."""
    where = (
        tool_grants.c.project_id == project_id,
        tool_grants.c.tool == tool,
        tool_grants.c.kind == kind,
        tool_grants.c.subject == subject,
    )
    row = conn.execute(select(tool_grants).where(*where)).first()
    if row is not None:
        found = _grant(row)
        if found.rules == rules:
            return found, "unchanged"
        conn.execute(update(tool_grants).where(tool_grants.c.id == found.id).values(rules=rules))
        return GrantRow(**{**found.to_dict(), "rules": rules}), "updated"
    values: dict[str, Any] = {
        "id": new_id("tgr"),
        "project_id": project_id,
        "tool": tool,
        "kind": kind,
        "subject": subject,
        "rules": rules,
        "created_at": time.time(),
        "created_by": actor,
    }
    conn.execute(insert(tool_grants).values(**values))
    return GrantRow(**values), "created"


def list_grants(conn: Connection, project_id: str, tool: str | None = None) -> list[GrantRow]:
    query = select(tool_grants).where(tool_grants.c.project_id == project_id)
    if tool is not None:
        query = query.where(tool_grants.c.tool == tool)
    query = query.order_by(tool_grants.c.tool, tool_grants.c.kind, tool_grants.c.subject)
    return [_grant(r) for r in conn.execute(query)]


def get_grant(conn: Connection, project_id: str, grant_id: str) -> GrantRow | None:
    query = select(tool_grants).where(tool_grants.c.project_id == project_id, tool_grants.c.id == grant_id)
    row = conn.execute(query).first()
    return None if row is None else _grant(row)


def delete_grant(conn: Connection, project_id: str, grant_id: str) -> bool:
    query = delete(tool_grants).where(tool_grants.c.project_id == project_id, tool_grants.c.id == grant_id)
    return conn.execute(query).rowcount > 0
