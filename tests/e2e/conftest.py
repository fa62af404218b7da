"""Helpers for the end-to-end tests: an `openai` client and a management-API client per server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from openai import OpenAI

from tests.e2e import AdminApi
from tests.support.servers import RunningServer


@pytest.fixture
def openai_for() -> Iterator[Callable[..., OpenAI]]:
    """`openai_for(server)`: an OpenAI client on that server's /v1 with its admin key, closed afterwards.

    No retries, so a failing call is seen once (and leaves exactly one trace)."""
    clients: list[OpenAI] = []

    def make(server: RunningServer, api_key: str | None = None) -> OpenAI:
        client = OpenAI(base_url=server.base_url, api_key=api_key or server.admin_key, max_retries=0, timeout=60.0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def admin_for() -> Iterator[Callable[[RunningServer], AdminApi]]:
    """`admin_for(server)`: an AdminApi for that server, closed afterwards."""
    apis: list[AdminApi] = []

    def make(server: RunningServer) -> AdminApi:
        api = AdminApi(server)
        apis.append(api)
        return api

    yield make
    for api in apis:
        api.close()


@pytest.fixture
def client(server: RunningServer, openai_for: Callable[..., OpenAI]) -> OpenAI:
    """An OpenAI client on the session server (admin key)."""
    return openai_for(server)


@pytest.fixture
def admin(server: RunningServer, admin_for: Callable[[RunningServer], AdminApi]) -> AdminApi:
    """The session server's management API (admin key)."""
    return admin_for(server)
