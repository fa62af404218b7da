"""Fixtures for dashboard tests: the whole server in this process (SQLite, no models loaded) and browsers'
sessions on it, signed in with keys of each role.

`dash` gives a `Dashboard`: `dash.admin_api` is a client with the admin key (set up data through the API, as a
user would), `dash.session(role)` a client signed in to the dashboard with a new key of that role and no
Authorization header (so it authenticates by its cookie, as a browser does), with `csrf` for API calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from pilothouse.server.app import PilothouseApp
from tests.support.asgi_app import app_settings, running

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Session:
    """A signed-in browser: `client` carries the session cookie, `csrf` the token its pages embed."""

    client: TestClient
    csrf: str
    key: str
    key_id: str

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """An API call the way the dashboard's script makes it: cookie plus CSRF header."""
        headers = {"x-csrf-token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@dataclass
class Dashboard:
    admin_api: TestClient
    app: PilothouseApp

    def create_key(self, role: str, name: str | None = None) -> tuple[str, str]:
        """A new key of `role` in the admin's project: (secret, key id)."""
        r = self.admin_api.post("/api/keys", json={"name": name or f"{role}-key", "role": role})
        assert r.status_code in (200, 201), r.text
        body = r.json()
        return body["secret"], body["id"]

    def browser(self) -> TestClient:
        """A client with no credentials on the running app (it shares the admin client's event loop, so the
        app's lifespan runs once)."""
        client = TestClient(self.app, follow_redirects=False)
        client.portal = self.admin_api.portal
        return client

    def sign_in(self, key: str, key_id: str = "") -> Session:
        client = self.browser()
        r = client.post("/login", data={"api_key": key, "next": "/traces"})
        assert r.status_code == 303, r.text
        page = client.get("/traces")
        assert page.status_code == 200, page.text
        match = _CSRF.search(page.text)
        assert match, "the page carries no CSRF token"
        return Session(client, match.group(1), key, key_id)

    def session(self, role: str = "admin") -> Session:
        key, key_id = self.create_key(role)
        return self.sign_in(key, key_id)


@pytest.fixture
def dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dashboard]:
    priced = Deployment(
        provider="fake", model="fake", input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2")
    )
    models = [ModelEntry(name="fake-chat", deployments=[priced])]
    with running(app_settings(tmp_path, models), monkeypatch) as (client, app):
        yield Dashboard(client, app)
