"""Dashboard sessions in the store, on both engines: open, resolve, expire, revoke, close, sweep."""

from __future__ import annotations

import time

from pilothouse.store.engine import Store
from pilothouse.store.keys import create_key, revoke_key
from pilothouse.store.projects import create_project
from pilothouse.store.ui_sessions import close_session, open_session, resolve_session, sweep_sessions


def _key(store: Store, role: str = "developer") -> str:
    with store.begin() as conn:
        project = create_project(conn, "default")
        key, _ = create_key(conn, project_id=project.id, name="k", role=role)
    return key.id


def test_a_session_acts_as_its_key_until_it_expires(store: Store) -> None:
    key_id = _key(store, "viewer")
    with store.begin() as conn:
        token, csrf = open_session(conn, key_id)
        short, _ = open_session(conn, key_id, ttl_s=-1)
    with store.connect() as conn:
        session = resolve_session(conn, token)
        assert session is not None
        assert (session.key_id, session.role, session.csrf_token) == (key_id, "viewer", csrf)
        assert resolve_session(conn, short) is None
        assert resolve_session(conn, token + "x") is None
        assert resolve_session(conn, "") is None
    with store.begin() as conn:
        assert sweep_sessions(conn) == 1
        assert sweep_sessions(conn, now=time.time() + 10**6) == 1


def test_a_revoked_key_or_a_closed_session_stops_working(store: Store) -> None:
    key_id = _key(store)
    with store.begin() as conn:
        first, _ = open_session(conn, key_id)
        second, _ = open_session(conn, key_id)
        assert close_session(conn, first)
        assert not close_session(conn, first)
    with store.connect() as conn:
        assert resolve_session(conn, first) is None
        assert resolve_session(conn, second) is not None
    with store.begin() as conn:
        revoke_key(conn, key_id)
    with store.connect() as conn:
        assert resolve_session(conn, second) is None
