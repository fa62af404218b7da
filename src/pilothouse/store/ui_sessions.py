"""Dashboard login sessions (table `ui_sessions`, store/ui_tables.py): open, resolve, close, sweep.

`open_session` returns the browser's token (kept only as its SHA-256 here) and the session's CSRF token, which
every page embeds and every state-changing request must send back in the `X-CSRF-Token` header.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from pilothouse.store.keys import get_key
from pilothouse.store.ui_tables import ui_sessions

SESSION_TTL_S = 12 * 3600.0
"""How long a dashboard session lasts after sign-in (the cookie's Max-Age too)."""


@dataclass(frozen=True, slots=True)
class UiSession:
    """An open session: the key it acts as (with that key's project and role), its CSRF token and expiry."""

    key_id: str
    project_id: str
    role: str
    csrf_token: str
    expires_at: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: Connection, key_id: str, *, ttl_s: float = SESSION_TTL_S) -> tuple[str, str]:
    """A new session for the key `key_id`: (the browser's token, the CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    conn.execute(
        insert(ui_sessions).values(
            token_hash=_digest(token), key_id=key_id, csrf_token=csrf, created_at=now, expires_at=now + ttl_s
        )
    )
    return token, csrf


def resolve_session(conn: Connection, token: str) -> UiSession | None:
    """The live session of a browser token, or None (unknown, expired, or its key revoked)."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(select(ui_sessions).where(ui_sessions.c.token_hash == _digest(token))).first()
    if row is None or float(row.expires_at) <= time.time():
        return None
    key = get_key(conn, str(row.key_id))
    if key is None or not key.active:
        return None
    return UiSession(key.id, key.project_id, key.role, str(row.csrf_token), float(row.expires_at))


def close_session(conn: Connection, token: str) -> bool:
    """Sign out: the token stops working at once. False when there was no such session."""
    result = conn.execute(delete(ui_sessions).where(ui_sessions.c.token_hash == _digest(token)))
    return bool(result.rowcount)


def sweep_sessions(conn: Connection, *, now: float | None = None) -> int:
    """Delete expired sessions; returns how many."""
    cutoff = time.time() if now is None else now
    result = conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at <= cutoff))
    return int(result.rowcount or 0)
