"""Guard policies and their immutable versions (the `policies` and `policy_versions` tables).

Plain reads and writes on a Connection. A push of a body whose hash equals the latest version's makes no new
version (idempotent); any other body becomes version N+1. The latest version of an enabled policy is in force;
disabling keeps every version (a later push enables the policy again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pilothouse.store.ids import new_id
from pilothouse.store.tables import policies, policy_versions


@dataclass(frozen=True, slots=True)
class PolicyRow:
    id: str
    project_id: str
    name: str
    enabled: bool
    created_at: float
    created_by: str | None
    updated_at: float
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class PolicyVersionRow:
    id: str
    policy_id: str
    version: int
    content_hash: str
    body: dict[str, Any]
    source_text: str | None
    author: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    """The version in force of one enabled policy."""

    project_id: str
    name: str
    version: int
    content_hash: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pushed:
    policy: PolicyRow
    version: PolicyVersionRow
    created: bool
    """False: the body equals the latest version's (no new version)."""
    enabled_again: bool
    """The policy was disabled and this push enabled it."""


def _policy(row: Any) -> PolicyRow:
    return PolicyRow(
        row.id,
        row.project_id,
        row.name,
        bool(row.enabled),
        row.created_at,
        row.created_by,
        row.updated_at,
        row.updated_by,
    )


def _version(row: Any) -> PolicyVersionRow:
    return PolicyVersionRow(
        row.id,
        row.policy_id,
        int(row.version),
        row.content_hash,
        dict(row.body),
        row.source_text,
        row.author,
        row.created_at,
    )


def get_policy(conn: Connection, project_id: str, name: str, *, for_update: bool = False) -> PolicyRow | None:
    """The policy `name` of a project; `for_update` locks its row (PostgreSQL) so pushes to it serialise."""
    query = select(policies).where(policies.c.project_id == project_id, policies.c.name == name)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _policy(row)


def list_policies(conn: Connection, project_id: str) -> list[tuple[PolicyRow, PolicyVersionRow]]:
    """Every policy of a project with its latest version, by name."""
    rows = [_policy(r) for r in conn.execute(select(policies).where(policies.c.project_id == project_id))]
    latest = _latest_versions(conn, [p.id for p in rows])
    return [(p, latest[p.id]) for p in sorted(rows, key=lambda p: p.name) if p.id in latest]


def latest_version(conn: Connection, policy_id: str) -> PolicyVersionRow | None:
    query = (
        select(policy_versions)
        .where(policy_versions.c.policy_id == policy_id)
        .order_by(policy_versions.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _version(row)


def get_version(conn: Connection, policy_id: str, version: int) -> PolicyVersionRow | None:
    query = select(policy_versions).where(
        policy_versions.c.policy_id == policy_id, policy_versions.c.version == version
    )
    row = conn.execute(query).first()
    return None if row is None else _version(row)


def list_versions(conn: Connection, policy_id: str) -> list[PolicyVersionRow]:
    """Every version of a policy, newest first."""
    query = (
        select(policy_versions)
        .where(policy_versions.c.policy_id == policy_id)
        .order_by(policy_versions.c.version.desc())
    )
    return [_version(r) for r in conn.execute(query)]


def push_policy(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    body: dict[str, Any],
    content_hash: str,
    source_text: str | None,
    actor: str | None,
) -> Pushed:
    """Store `body` as the policy's next version unless the latest version has the same hash; enables it."""
    now = time.time()
    policy = get_policy(conn, project_id, name, for_update=True)
    if policy is None:
        policy = PolicyRow(new_id("pol"), project_id, name, True, now, actor, now, actor)
        conn.execute(
            insert(policies).values(
                id=policy.id,
                project_id=project_id,
                name=name,
                enabled=True,
                created_at=now,
                created_by=actor,
                updated_at=now,
                updated_by=actor,
            )
        )
    latest = latest_version(conn, policy.id)
    enabled_again = not policy.enabled
    if enabled_again:
        set_enabled(conn, policy, True, actor)
        policy = PolicyRow(policy.id, project_id, name, True, policy.created_at, policy.created_by, now, actor)
    if latest is not None and latest.content_hash == content_hash:
        return Pushed(policy, latest, created=False, enabled_again=enabled_again)
    number = 1 if latest is None else latest.version + 1
    version = PolicyVersionRow(new_id("pov"), policy.id, number, content_hash, body, source_text, actor, now)
    conn.execute(
        insert(policy_versions).values(
            id=version.id,
            policy_id=policy.id,
            version=number,
            content_hash=content_hash,
            body=body,
            source_text=source_text,
            author=actor,
            created_at=now,
        )
    )
    if not enabled_again:
        conn.execute(update(policies).where(policies.c.id == policy.id).values(updated_at=now, updated_by=actor))
    return Pushed(policy, version, created=True, enabled_again=enabled_again)


def set_enabled(conn: Connection, policy: PolicyRow, enabled: bool, actor: str | None) -> None:
    conn.execute(
        update(policies)
        .where(policies.c.id == policy.id)
        .values(enabled=enabled, updated_at=time.time(), updated_by=actor)
    )


def active_policies(conn: Connection) -> list[ActivePolicy]:
    """The version in force of every enabled policy of every project (one query)."""
    rows = {p.id: p for p in (_policy(r) for r in conn.execute(select(policies).where(policies.c.enabled)))}
    latest = _latest_versions(conn, list(rows))
    found = [
        ActivePolicy(rows[pid].project_id, rows[pid].name, v.version, v.content_hash, v.body)
        for pid, v in latest.items()
    ]
    return sorted(found, key=lambda a: (a.project_id, a.name))


def _latest_versions(conn: Connection, policy_ids: list[str]) -> dict[str, PolicyVersionRow]:
    if not policy_ids:
        return {}
    newest = (
        select(policy_versions.c.policy_id, func.max(policy_versions.c.version).label("version"))
        .where(policy_versions.c.policy_id.in_(policy_ids))
        .group_by(policy_versions.c.policy_id)
        .subquery()
    )
    query = select(policy_versions).join(
        newest,
        (policy_versions.c.policy_id == newest.c.policy_id) & (policy_versions.c.version == newest.c.version),
    )
    return {r.policy_id: _version(r) for r in conn.execute(query)}
