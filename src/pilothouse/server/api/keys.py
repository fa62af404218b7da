"""/api/keys and /api/projects: API keys (shown once, hashed at rest) and the projects they belong to.

Admins manage the keys of their own project; owners also create projects and manage keys in any project
(server/scope.py). No key creates or revokes a key of a higher role than its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, Forbidden, NotFound
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import (
    ALL_PROJECTS,
    audit_cross_read,
    audit_details,
    reaches,
    resolve_project,
    resolve_projects,
)
from pilothouse.store.keys import OWNER, Role, create_key, get_key, list_keys, revoke_key, role_at_least
from pilothouse.store.projects import create_project, list_projects

router = APIRouter(prefix="/api", tags=["keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(default="service", description="viewer, service, developer, admin or owner (owners only).")
    project: str | None = Field(
        default=None, description="Project id or name; defaults to the caller's (another project: owner keys only)."
    )


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == ALL_PROJECTS:
            raise ValueError(f"'{ALL_PROJECTS}' is reserved (it means every project); choose another name")
        return name


def _no_higher_role(principal: Principal, role: str, verb: str) -> None:
    if not role_at_least(principal.role, role):
        raise Forbidden(
            f"{verb} an '{role}' key needs the '{role}' role; this key's role is '{principal.role}'", param="role"
        )


@router.post("/keys", status_code=201)
def create_api_key(body: KeyCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create a key. The secret is in this response only; it cannot be shown again."""
    require_role(principal, "admin")
    _no_higher_role(principal, body.role, "creating")
    with state.store.begin() as conn:
        project_id = resolve_project(conn, principal, body.project)
        key, secret = create_key(
            conn, project_id=project_id, name=body.name, role=body.role, created_by=principal.key_id
        )
        append_event(
            conn,
            actor=principal.key_id,
            action="key.create",
            target=key.id,
            project_id=project_id,
            details=audit_details(principal, project_id, {"role": key.role, "name": key.name}),
        )
    return {**key.to_dict(), "secret": secret}


@router.get("/keys")
def list_api_keys(
    state: StateDep, principal: PrincipalDep, include_revoked: bool = True, project: str | None = None
) -> dict[str, Any]:
    """The keys of the caller's project (never their secrets); owners may name another project or `all`."""
    require_role(principal, "admin")
    with state.store.connect() as conn:
        project_id = resolve_projects(conn, principal, project)
    audit_cross_read(state.store, principal, "keys.list", project_id)
    with state.store.connect() as conn:
        keys = list_keys(conn, project_id=project_id, include_revoked=include_revoked)
    return {"data": [k.to_dict() for k in keys]}


@router.delete("/keys/{key_id}")
def revoke_api_key(key_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, "admin")
    with state.store.begin() as conn:
        key = get_key(conn, key_id)
        if key is None or not reaches(principal, key.project_id):
            raise NotFound(f"no key {key_id!r} in this project (list them with `pilothouse keys list`)")
        if key.id == principal.key_id:
            raise Forbidden("a key cannot revoke itself; use another admin key")
        _no_higher_role(principal, key.role, "revoking")
        if not revoke_key(conn, key_id):
            raise Conflict(f"key {key_id!r} is already revoked")
        append_event(
            conn,
            actor=principal.key_id,
            action="key.revoke",
            target=key_id,
            project_id=key.project_id,
            details=audit_details(principal, key.project_id),
        )
        revoked = get_key(conn, key_id)
    state.auth.forget()
    assert revoked is not None
    return revoked.to_dict()


@router.post("/projects", status_code=201)
def create_new_project(body: ProjectCreate, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create a project (owner keys); then create its keys with `pilothouse keys create --project NAME`."""
    require_role(principal, OWNER)
    try:
        with state.store.begin() as conn:
            project = create_project(conn, body.name)
            append_event(
                conn,
                actor=principal.key_id,
                action="project.create",
                target=project.id,
                project_id=project.id,
                details=audit_details(principal, project.id, {"name": project.name}),
            )
    except IntegrityError as exc:
        raise Conflict(f"a project named {body.name!r} already exists") from exc
    return project.to_dict()


@router.get("/projects")
def list_all_projects(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    require_role(principal, OWNER)
    with state.store.connect() as conn:
        return {"data": [p.to_dict() for p in list_projects(conn)]}
