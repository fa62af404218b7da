"""First start: create the default project and the bootstrap admin key, once, on an empty store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from pilothouse.audit.chain import append_event
from pilothouse.store.engine import Store
from pilothouse.store.keys import any_keys, create_key
from pilothouse.store.projects import DEFAULT_PROJECT, create_project, get_project

_LOCK_ID = 7_300_003


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What the first start created; `secret` is None when the store already had keys."""

    project_id: str
    key_id: str | None
    secret: str | None


def save_admin_key(path: Path, secret: str) -> None:
    """Write the key readable by its owner only (0600), creating the data directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)


def bootstrap(store: Store, key_path: Path) -> Bootstrap:
    """Create the default project and an admin key if the store has no keys at all.

    The secret is `PILOTHOUSE_ADMIN_KEY` when set (for automation), otherwise random; it is saved to
    `key_path` (mode 0600) so the CLI can use it. Replicas starting together on PostgreSQL take an advisory
    lock so only one creates it.
    """
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        project = get_project(conn, DEFAULT_PROJECT)
        if project is None:
            project = create_project(conn, DEFAULT_PROJECT)
            append_event(conn, actor="system", action="project.create", target=project.id, project_id=project.id)
        if any_keys(conn):
            return Bootstrap(project.id, None, None)
        env_secret = os.environ.get("PILOTHOUSE_ADMIN_KEY") or None
        key, secret = create_key(conn, project_id=project.id, name="bootstrap admin", role="admin", secret=env_secret)
        append_event(
            conn,
            actor="system",
            action="key.create",
            target=key.id,
            project_id=project.id,
            details={"role": "admin", "name": key.name, "bootstrap": True},
        )
    save_admin_key(key_path, secret)
    return Bootstrap(project.id, key.id, secret)
