"""Signing in to the dashboard, its session cookie, and the session as an API credential (CSRF, audit)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.ui.conftest import Dashboard


def _fresh(dash: Dashboard) -> TestClient:
    return dash.browser()


def test_pages_send_a_visitor_without_a_session_to_sign_in(dash: Dashboard) -> None:
    client = _fresh(dash)
    r = client.get("/traces?range=24h")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/traces%3Frange%3D24h"
    page = client.get("/login")
    assert page.status_code == 200
    assert '<label for="api_key">API key</label>' in page.text


def test_sign_in_sets_a_strict_http_only_cookie_and_goes_back(dash: Dashboard) -> None:
    key, _ = dash.create_key("viewer")
    client = _fresh(dash)
    r = client.post("/login", data={"api_key": key, "next": "/traces"})
    assert r.status_code == 303
    assert r.headers["location"] == "/traces"
    cookie = r.headers["set-cookie"].lower()
    assert "ph_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert key not in r.headers["set-cookie"]  # the browser holds a session token, never the key


def test_a_wrong_key_is_refused_with_the_form_again(dash: Dashboard) -> None:
    client = _fresh(dash)
    r = client.post("/login", data={"api_key": "ph-not-a-key", "next": "/"})
    assert r.status_code == 401
    assert "not valid or has been revoked" in r.text
    assert "set-cookie" not in r.headers
    assert client.post("/login", data={"api_key": "  "}).status_code == 400


def test_next_cannot_leave_the_server(dash: Dashboard) -> None:
    key, _ = dash.create_key("viewer")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = _fresh(dash).post("/login", data={"api_key": key, "next": target})
        assert r.headers["location"] == "/", target


def test_the_session_calls_the_api_as_its_key_with_csrf_for_changes(dash: Dashboard) -> None:
    key, key_id = dash.create_key("admin")
    client = _fresh(dash)
    client.post("/login", data={"api_key": key})
    listed = client.get("/api/keys")  # a read: the cookie alone
    assert listed.status_code == 200, listed.text
    refused = client.post("/api/keys", json={"name": "from-the-dashboard", "role": "viewer"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/keys", json={"name": "x", "role": "viewer"}, headers={"x-csrf-token": "nope"})
    assert wrong.json()["error"]["code"] == "csrf_failed"
    from pilothouse.store.ui_sessions import resolve_session

    token = client.cookies.get("ph_session")
    assert token
    with dash.app.api.state.pilothouse.store.connect() as conn:
        session = resolve_session(conn, token)
    assert session is not None and session.key_id == key_id and session.role == "admin"
    made = client.post(
        "/api/keys", json={"name": "from-the-dashboard", "role": "viewer"}, headers={"x-csrf-token": session.csrf_token}
    )
    assert made.status_code == 201, made.text
    audit = dash.admin_api.get("/api/audit", params={"action": "dashboard.request"}).json()
    events = audit["data"] if isinstance(audit, dict) else audit
    assert any(e["actor"] == key_id and e["details"]["path"] == "/api/keys" for e in events)


def test_a_viewer_session_has_the_viewer_role_on_the_api(dash: Dashboard) -> None:
    key, _ = dash.create_key("viewer")
    client = _fresh(dash)
    client.post("/login", data={"api_key": key})
    assert client.get("/api/keys").status_code == 403  # keys are an admin's, for a session as for the key


def test_revoking_the_key_ends_its_sessions(dash: Dashboard) -> None:
    key, key_id = dash.create_key("admin")
    client = _fresh(dash)
    client.post("/login", data={"api_key": key})
    assert client.get("/api/keys").status_code == 200
    assert dash.admin_api.delete(f"/api/keys/{key_id}").status_code == 200
    dash.app.api.state.pilothouse.auth.forget()
    gone = client.get("/api/keys")
    assert gone.status_code == 401
    assert gone.json()["error"]["code"] == "session_expired"
    assert client.get("/traces").status_code == 303


def test_sign_out_needs_the_token_and_ends_the_session(dash: Dashboard) -> None:
    key, _ = dash.create_key("viewer")
    client = _fresh(dash)
    client.post("/login", data={"api_key": key})
    from pilothouse.store.ui_sessions import resolve_session

    token = client.cookies.get("ph_session") or ""
    with dash.app.api.state.pilothouse.store.connect() as conn:
        session = resolve_session(conn, token)
    assert session is not None
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    r = client.post("/logout", data={"csrf_token": session.csrf_token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.set("ph_session", token)  # a copied cookie no longer works
    assert client.get("/api/traces").status_code == 401


def test_an_authorization_header_wins_over_the_cookie(dash: Dashboard) -> None:
    viewer, _ = dash.create_key("viewer")
    client = _fresh(dash)
    client.post("/login", data={"api_key": viewer})
    admin = dash.admin_api.headers["authorization"]
    assert client.get("/api/keys", headers={"authorization": admin}).status_code == 200


def test_static_assets_and_html_errors(dash: Dashboard) -> None:
    client = _fresh(dash)
    js = client.get("/ui/static/pilothouse.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text
    assert client.get("/ui/static/pilothouse.css").status_code == 200
    key, _ = dash.create_key("viewer")
    client.post("/login", data={"api_key": key})
    missing = client.get("/no-such-page", headers={"accept": "text/html,application/xhtml+xml"})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "there is no page at /no-such-page" in missing.text
    assert client.get("/no-such-page").json()["error"]["type"] == "not_found_error"  # not a browser: JSON
    api_missing = client.get("/api/no-such-route")
    assert api_missing.status_code == 404 and api_missing.json()["error"]["type"] == "not_found_error"


def test_pages_forbid_inline_scripts_framing_and_caching(dash: Dashboard) -> None:
    session = dash.session("viewer")
    page = session.client.get("/traces")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # only the package's own script file
