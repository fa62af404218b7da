"""Dashboard sessions as a second way to authenticate to the API (docs/dashboard.md, "Sign-in and sessions").

A person signs in to the dashboard with an API key; the browser then holds a session cookie (`HttpOnly`,
`SameSite=Strict`). The management API accepts that cookie in place of `Authorization: Bearer`, acting as the
key the session was opened with, with exactly its role and project: the dashboard's actions are API calls.
Because a cookie rides along with any request the browser makes, every state-changing request on a session
must also carry the session's CSRF token in `X-CSRF-Token` (the pages embed it), and each one is recorded in
the audit log as `dashboard.request` before the route runs (the route's own audit events follow).
An `Authorization` header, when present, always wins over the cookie.
"""

from __future__ import annotations

import secrets

from starlette.requests import HTTPConnection

from pilothouse.audit.chain import append_event
from pilothouse.errors import Forbidden, Unauthorized
from pilothouse.principal import Principal
from pilothouse.store.engine import Store
from pilothouse.store.ui_sessions import UiSession, resolve_session

SESSION_COOKIE = "ph_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def load_session(store: Store, token: str) -> UiSession | None:
    with store.connect() as conn:
        return resolve_session(conn, token)


def session_principal(store: Store, request: HTTPConnection, method: str) -> Principal:
    """The principal of the request's session cookie; for unsafe methods the CSRF header is checked and the
    request audited. Raises 401 when the session is gone, 403 when the CSRF token is missing or wrong."""
    session = load_session(store, request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        raise Unauthorized(
            "your dashboard session has ended (signed out, expired, or its key was revoked): sign in again",
            code="session_expired",
        )
    principal = Principal(session.key_id, session.project_id, session.role)
    if method in SAFE_METHODS:
        return principal
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not secrets.compare_digest(sent, session.csrf_token):
        raise Forbidden(
            "missing or wrong CSRF token: a dashboard session's changes must send the page's token in the "
            "X-CSRF-Token header (reload the page if it is old)",
            code="csrf_failed",
        )
    with store.begin() as conn:
        append_event(
            conn,
            actor=principal.key_id,
            action="dashboard.request",
            target=request.url.path[:200],
            project_id=principal.project_id,
            details={"method": method, "path": request.url.path, "via": "dashboard session"},
        )
    return principal
