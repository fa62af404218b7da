"""Projects: the tenant boundary. Every other row belongs to one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from pilothouse.store.ids import new_id
from pilothouse.store.tables import projects

DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


def create_project(conn: Connection, name: str) -> Project:
    project = Project(id=new_id("proj"), name=name, created_at=time.time())
    conn.execute(insert(projects).values(id=project.id, name=project.name, created_at=project.created_at))
    return project


def get_project(conn: Connection, id_or_name: str) -> Project | None:
    row = conn.execute(select(projects).where((projects.c.id == id_or_name) | (projects.c.name == id_or_name))).first()
    return None if row is None else Project(row.id, row.name, row.created_at)


def list_projects(conn: Connection) -> list[Project]:
    return [Project(r.id, r.name, r.created_at) for r in conn.execute(select(projects).order_by(projects.c.name))]


def set_content_capture(conn: Connection, project_id: str, mode: str | None) -> bool:
    """Set a project's content capture (off, redacted, full; None: back to the default); False: no project."""
    done = conn.execute(update(projects).where(projects.c.id == project_id).values(content_capture=mode))
    return bool(done.rowcount)


def content_capture(conn: Connection, project_id: str) -> str | None:
    """The project's own content capture, None when it has none (the default applies)."""
    return conn.execute(select(projects.c.content_capture).where(projects.c.id == project_id)).scalar_one_or_none()
