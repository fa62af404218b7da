"""The whole server application in this process (Starlette's TestClient runs its lifespan), on SQLite in a
temporary folder, with the models a test names: fast tests of the HTTP surface without a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pilothouse.config import LocalModelSettings, ModelEntry, Settings
from pilothouse.server.app import PilothouseApp, create_app

ADMIN_KEY = "ph-asgi-admin-key-0123456789abcdef"


def app_settings(data_dir: Path, models: list[ModelEntry], **overrides: Any) -> Settings:
    """Settings for an in-process server: SQLite in `data_dir`, only `models`, nothing preloaded."""
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'pilothouse.db'}",
        include_default_models=False,
        models=models,
        local=LocalModelSettings(preload=False),
        **{"canary_check_interval_s": 0, **overrides},
    )


@contextmanager
def running(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, *, raise_server_exceptions: bool = True
) -> Iterator[tuple[TestClient, PilothouseApp]]:
    """A started application (lifespan run) and a client on it with the admin key (ADMIN_KEY).

    `raise_server_exceptions=False` lets a test see a crash as the 500 a real client would get."""
    monkeypatch.setenv("PILOTHOUSE_ADMIN_KEY", ADMIN_KEY)
    app = create_app(settings)
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(app, headers=headers, raise_server_exceptions=raise_server_exceptions) as client:
        yield client, app


@contextmanager
def cli_in_process(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """`running(settings)`, with the CLI's SDK client (its usual error handling included) talking to it: CLI
    commands run through typer's CliRunner reach this in-process server with the admin key."""
    from pilothouse.cli import common
    from pilothouse.sdk.client import Pilothouse

    with running(settings, monkeypatch) as (client, _):

        class InProcess(Pilothouse):
            def __init__(self, url: str | None, api_key: str | None) -> None:
                super().__init__("http://testserver", "unused")
                self._http.close()
                self._http = client

            def close(self) -> None:  # the test client outlives each command
                pass

            def request(self, method: str, path: str, **kwargs: Any) -> Any:
                kwargs.pop("timeout", None)  # the TestClient has no per-request timeout (promote sets one)
                return super().request(method, path, **kwargs)

        monkeypatch.setattr(common, "Pilothouse", InProcess)
        yield client
