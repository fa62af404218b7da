"""/api/keys and /api/projects: API keys (shown once, hashed at rest) and the projects they belong to."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, Forbidden, NotFound
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.store.keys import create_key, get_key, list_keys, revoke_key
from pilothouse.store.projects import create_project, get_project, list_projects

router = APIRouter(prefix="/api", tags=["keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "developer", "viewer", "service"] = "service"
    project: str | None = Field(default=None, description="Project id or name; defaults to the caller's.")


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@router.post("/keys", status_code=201)
def create_api_key(body: KeyCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create a key. The secret is in this response only; it cannot be shown again."""
    require_role(principal, "admin")
    with state.store.begin() as conn:
        project_id = principal.project_id
        if body.project is not None:
            project = get_project(conn, body.project)
            if project is None:
                raise NotFound(f"project {body.project!r} does not exist; create it with `pilothouse projects create`")
            project_id = project.id
        key, secret = create_key(
            conn, project_id=project_id, name=body.name, role=body.role, created_by=principal.key_id
        )
        append_event(
            conn,
            actor=principal.key_id,
            action="key.create",
            target=key.id,
            project_id=project_id,
            details={"role": key.role, "name": key.name},
        )
    return {**key.to_dict(), "secret": secret}


@router.get("/keys")
def list_api_keys(state: StateDep, principal: PrincipalDep, include_revoked: bool = True) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.connect() as conn:
        keys = list_keys(conn, project_id=principal.project_id, include_revoked=include_revoked)
    return {"data": [k.to_dict() for k in keys]}


@router.delete("/keys/{key_id}")
def revoke_api_key(key_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.begin() as conn:
        key = get_key(conn, key_id)
        if key is None or key.project_id != principal.project_id:
            raise NotFound(f"no key {key_id!r} in this project (list them with `pilothouse keys list`)")
        if key.id == principal.key_id:
            raise Forbidden("a key cannot revoke itself; use another admin key")
        if not revoke_key(conn, key_id):
            raise Conflict(f"key {key_id!r} is already revoked")
        append_event(conn, actor=principal.key_id, action="key.revoke", target=key_id, project_id=key.project_id)
        revoked = get_key(conn, key_id)
    state.auth.forget()
    assert revoked is not None
    return revoked.to_dict()


@router.post("/projects", status_code=201)
def create_new_project(body: ProjectCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")
    try:
        with state.store.begin() as conn:
            project = create_project(conn, body.name)
            append_event(
                conn,
                actor=principal.key_id,
                action="project.create",
                target=project.id,
                project_id=project.id,
            )
    except IntegrityError as exc:
        raise Conflict(f"a project named {body.name!r} already exists") from exc
    return project.to_dict()


@router.get("/projects")
def list_all_projects(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.connect() as conn:
        return {"data": [p.to_dict() for p in list_projects(conn)]}
