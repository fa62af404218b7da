"""An in-process server (SQLite, the fake model) the SDK sends its spans to, through the test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from pilothouse.sdk.tracing import exporter
from tests.support.asgi_app import ADMIN_KEY, app_settings, running

CHAT = "fake-chat"
MODELS = [ModelEntry(name=CHAT, deployments=[Deployment(provider="fake", model="fake")])]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with running(app_settings(tmp_path, MODELS), monkeypatch) as (client, _app):
        yield client


@pytest.fixture
def sent_to(server: TestClient) -> Iterator[exporter.BatchExporter]:
    """The SDK configured to send to `server`; the previous exporter is put back afterwards."""
    previous = exporter.ACTIVE
    active = exporter.configure(api_key=ADMIN_KEY, client=server, flush_interval_s=0.05)  # type: ignore[arg-type]
    assert isinstance(active, exporter.BatchExporter)
    yield active
    active.shutdown(timeout=5)
    exporter.ACTIVE = previous
