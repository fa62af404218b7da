"""/api/projects/capture: a project's content capture (off, redacted, full; docs/traces-query.md).

Reading it needs the viewer role, changing it the admin role; each acts in the key's project (owner keys may
name another, server/scope.py). A change is an audit event and applies to the next batch of traces stored.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.audit.chain import append_event
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.scope import audit_cross_read, audit_details, resolve_project
from pilothouse.store import projects as repo
from pilothouse.tracing import capture

router = APIRouter(prefix="/api/projects", tags=["projects"])

Mode = Literal["off", "redacted", "full"]


class CaptureSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(description="off: numbers only; redacted: PII and secrets masked; full: as captured.")
    project: str | None = Field(default=None, description="A project id or name (default: the key's project).")


class Capture(BaseModel):
    project_id: str
    mode: Mode = Field(description="The mode that applies to the project's traces.")
    source: Literal["project", "default"]


class CaptureChanged(Capture):
    previous: Mode


@router.get("/capture", response_model=Capture)
async def get_capture(state: StateDep, principal: PrincipalDep, project: str | None = None) -> Capture:
    """The project's content capture and whether it is its own or the default (`full`)."""
    require_role(principal, "viewer")

    def read() -> Capture:
        with state.store.connect() as conn:
            project_id = resolve_project(conn, principal, project)
            own = repo.content_capture(conn, project_id)
        audit_cross_read(state.store, principal, "project.capture.read", project_id)
        return Capture(project_id=project_id, mode=own or "full", source="project" if own else "default")  # type: ignore[arg-type]

    return await asyncio.to_thread(read)


@router.put("/capture", response_model=CaptureChanged)
async def set_capture(body: CaptureSet, state: StateDep, principal: PrincipalDep) -> CaptureChanged:
    """Set what of the project's trace content is stored from now on (stored traces are not rewritten)."""
    require_role(principal, "admin")

    def write() -> CaptureChanged:
        with state.store.begin() as conn:
            project_id = resolve_project(conn, principal, body.project)
            previous = repo.content_capture(conn, project_id) or "full"
            repo.set_content_capture(conn, project_id, body.mode)
            append_event(
                conn,
                actor=principal.key_id,
                action="project.capture.set",
                target=project_id,
                project_id=project_id,
                details=audit_details(principal, project_id, {"mode": body.mode, "previous": previous}),
            )
        capture.changed()  # committed: this process's sinks read the modes again before their next batch
        return CaptureChanged(project_id=project_id, mode=body.mode, source="project", previous=previous)  # type: ignore[arg-type]

    return await asyncio.to_thread(write)
