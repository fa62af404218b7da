"""Which project a request acts in: one rule for every route (docs/security.md, "Roles and projects").

Every key belongs to one project and acts there. Data routes (the gateway, traces, scores, prompts, cost
estimates) never leave it. Management routes (keys, budgets, limits, audit, cost reports) may act in another
project, or in `all` of them, for `owner` keys only; each such cross-project action, reads included (but for
reads of the audit log itself), is an audit event in the target project whose details say
`cross_project: true` and name the actor's project.

Refusals never tell whether another project's objects exist:
- naming another project (a `project` field or query parameter, or a project as a budget's subject) without
  the owner role answers 403, whether or not that project exists;
- an id (key, budget, limit, trace) of an object in a project the key may not reach answers 404, exactly as
  an id that does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import Forbidden, InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.server.auth import is_owner
from pilothouse.store.engine import Store
from pilothouse.store.projects import get_project

ALL_PROJECTS = "all"
"""The `project` value that means every project (owner keys, on the routes that list or report)."""


def reaches(principal: Principal, project_id: str) -> bool:
    """Whether a management route may act on an object of `project_id` (else: answer 404 for it)."""
    return project_id == principal.project_id or is_owner(principal)


def _refuse_other(principal: Principal, ref: str, param: str) -> Forbidden:
    return Forbidden(
        f"{param} {ref!r}: acting on another project needs the 'owner' role; this {principal.role} key acts in "
        "its own project only (leave the project out)",
        param=param,
        code="cross_project_forbidden",
    )


def resolve_project(conn: Connection, principal: Principal, ref: str | None, *, param: str = "project") -> str:
    """The id of the project `ref` (an id or name; None: the key's own) that this principal may act in."""
    if ref is None:
        return principal.project_id
    found = get_project(conn, ref)
    if found is not None and found.id == principal.project_id:
        return found.id
    if not is_owner(principal):
        raise _refuse_other(principal, ref, param)
    if ref == ALL_PROJECTS:
        raise InvalidRequest(f"{param}: name one project here ('all' is only for lists and reports)", param=param)
    if found is None:
        raise NotFound(f"project {ref!r} does not exist (list them with `pilothouse projects list`)", param=param)
    return found.id


def resolve_projects(conn: Connection, principal: Principal, ref: str | None, *, param: str = "project") -> str | None:
    """Like `resolve_project`, for lists and reports, where an owner may also say `all` (returned as None)."""
    if ref == ALL_PROJECTS:
        if not is_owner(principal):
            raise _refuse_other(principal, ref, param)
        return None
    return resolve_project(conn, principal, ref, param=param)


def audit_details(
    principal: Principal, project_id: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """`details` of an audit event, marked as cross-project when it acts outside the key's own project."""
    if project_id == principal.project_id:
        return details
    return {**(details or {}), "cross_project": True, "actor_project": principal.project_id}


def audit_cross_read(
    store: Store, principal: Principal, action: str, project_id: str | None, details: dict[str, Any] | None = None
) -> None:
    """Record an owner's read of another project (`project_id`) or of all of them (None), before the read;
    reads of the key's own project are not recorded (and take no write lock)."""
    if project_id == principal.project_id:
        return
    with store.begin() as conn:
        append_event(
            conn,
            actor=principal.key_id,
            action=action,
            target=project_id or ALL_PROJECTS,
            project_id=project_id,
            details=audit_details(principal, project_id, details),
        )
