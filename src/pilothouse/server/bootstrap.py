"""First start: create the default project and the bootstrap owner key, once, on an empty store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from pilothouse.audit.chain import append_event
from pilothouse.store.engine import Store
from pilothouse.store.keys import OWNER, any_keys, create_key
from pilothouse.store.private_files import write_private
from pilothouse.store.projects import DEFAULT_PROJECT, create_project, get_project

_LOCK_ID = 7_300_003
ADMIN_KEY_ENV = "PILOTHOUSE_ADMIN_KEY"


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What the first start created; `secret` is None when the store already had keys.

    `generated`: the server made the secret up (so only the banner and the saved file know it); False when it
    came from `PILOTHOUSE_ADMIN_KEY`, which the operator already has and which must not be printed."""

    project_id: str
    key_id: str | None
    secret: str | None
    generated: bool = False


def save_admin_key(path: Path, secret: str) -> None:
    """Write the key readable by its owner only (0600), creating the data directory (0700) if needed."""
    write_private(path, secret + "\n")


def bootstrap(store: Store, key_path: Path) -> Bootstrap:
    """Create the default project and an owner key if the store has no keys at all.

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
        env_secret = os.environ.get(ADMIN_KEY_ENV) or None
        key, secret = create_key(conn, project_id=project.id, name="bootstrap owner", role=OWNER, secret=env_secret)
        append_event(
            conn,
            actor="system",
            action="key.create",
            target=key.id,
            project_id=project.id,
            details={"role": OWNER, "name": key.name, "bootstrap": True},
        )
    save_admin_key(key_path, secret)
    return Bootstrap(project.id, key.id, secret, generated=env_secret is None)
