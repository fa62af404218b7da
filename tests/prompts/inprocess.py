"""The whole server application in this process (Starlette's TestClient: lifespan, gateway and API), on the
test's store (SQLite or PostgreSQL), with the `fake` provider as the model: fast tests of the API's logic.
End-to-end behaviour with the real server and model is in tests/e2e."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, LocalModelSettings, ModelEntry, Settings
from pilothouse.server.app import create_app
from pilothouse.store.engine import Store

ADMIN_KEY = "ph-inprocess-admin-key-0123456789"
FAKE_MODEL = "fake-chat"


@dataclass
class App:
    http: TestClient
    admin_key: str

    def call(
        self, method: str, path: str, *, key: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        headers = {"authorization": f"Bearer {key or self.admin_key}", **(headers or {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, *, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def key(self, role: str, project: str | None = None) -> str:
        """A new API key with `role` (in `project`, default the admin's) and its secret."""
        body = self.ok("POST", "/api/keys", status=201, json={"name": f"{role}-key", "role": role, "project": project})
        secret: str = body["secret"]
        return secret


@contextmanager
def running_app(store: Store, data_dir: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[App]:
    """The application on `store`'s database; the canary monitor is off unless `canary_check_interval_s` is set."""
    monkeypatch.setenv("PILOTHOUSE_ADMIN_KEY", ADMIN_KEY)
    fake = ModelEntry(name=FAKE_MODEL, deployments=[Deployment(provider="fake", model="fake")])
    config = Settings(
        data_dir=data_dir,
        database_url=store.engine.url.render_as_string(hide_password=False),
        include_default_models=False,
        models=[fake],
        local=LocalModelSettings(preload=False),
        **{"canary_check_interval_s": 0, **settings},
    )
    with TestClient(create_app(config)) as http:
        yield App(http, ADMIN_KEY)
