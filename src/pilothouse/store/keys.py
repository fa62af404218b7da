"""API keys: random secrets shown once, stored only as SHA-256 hashes, scoped to a project with a role."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

# Re-exported: the roles moved to pilothouse.roles (importable without the store).
from pilothouse.roles import OWNER as OWNER
from pilothouse.roles import ROLES as ROLES
from pilothouse.roles import Role as Role
from pilothouse.store.ids import new_id
from pilothouse.store.tables import api_keys

KEY_PREFIX = "ph-"


def role_at_least(role: str, minimum: str) -> bool:
    """Whether `role` ranks at or above `minimum` (an unknown role ranks below every role)."""
    rank = ROLES.index(role) if role in ROLES else -1
    return rank >= ROLES.index(minimum)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    project_id: str
    name: str
    prefix: str
    role: str
    created_at: float
    created_by: str | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "active": self.active,
        }


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _row(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        prefix=row.prefix,
        role=row.role,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


def create_key(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    role: str,
    created_by: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret, which is never retrievable again."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    secret = secret or generate_secret()
    key = ApiKey(
        id=new_id("key"),
        project_id=project_id,
        name=name,
        prefix=secret[:10],
        role=role,
        created_at=time.time(),
        created_by=created_by,
        revoked_at=None,
    )
    conn.execute(
        insert(api_keys).values(
            id=key.id,
            project_id=key.project_id,
            name=key.name,
            prefix=key.prefix,
            key_hash=hash_key(secret),
            role=key.role,
            created_at=key.created_at,
            created_by=key.created_by,
        )
    )
    return key, secret


def find_by_secret(conn: Connection, secret: str) -> ApiKey | None:
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_key(secret))).first()
    return None if row is None else _row(row)


def get_key(conn: Connection, key_id: str) -> ApiKey | None:
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    return None if row is None else _row(row)


def list_keys(conn: Connection, *, project_id: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
    query = select(api_keys).order_by(api_keys.c.created_at)
    if project_id is not None:
        query = query.where(api_keys.c.project_id == project_id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [_row(r) for r in conn.execute(query)]


def revoke_key(conn: Connection, key_id: str) -> bool:
    """Revoke an active key; False when it does not exist or is already revoked."""
    result = conn.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=time.time())
    )
    return result.rowcount == 1


def any_keys(conn: Connection) -> bool:
    return conn.execute(select(api_keys.c.id).limit(1)).first() is not None
