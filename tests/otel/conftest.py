"""A real server in this process (uvicorn in a thread, SQLite in tmp_path) for OTLP tests, and a local OTLP/HTTP
receiver that decodes what our exporter sends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.server.app import create_app
from tests.support.asgi_app import ADMIN_KEY, app_settings
from tests.support.servers import free_port

MODELS = [ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake")])]


@dataclass
class Served:
    url: str
    key: str = ADMIN_KEY

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {key or self.key}"}, timeout=30)


@dataclass
class Receiver:
    """An OTLP/HTTP collector stand-in: decodes each request; `answers` scripts the status codes to give."""

    url: str
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def spans(self) -> list[Any]:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


def _serve(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


ServerFactory = Callable[..., Served]


@pytest.fixture
def start_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerFactory]:
    """Starts a server with `Settings` overrides; stopped at the end of the test."""
    monkeypatch.setenv("PILOTHOUSE_ADMIN_KEY", ADMIN_KEY)
    stops: list[Iterator[str]] = []

    def start(**overrides: Any) -> Served:
        settings: Settings = app_settings(tmp_path / f"server{len(stops)}", MODELS, **overrides)
        gen = _serve(create_app(settings))
        url = next(gen)
        stops.append(gen)
        return Served(url)

    yield start
    for gen in reversed(stops):
        next(gen, None)


@pytest.fixture
def server(start_server: ServerFactory) -> Served:
    return start_server()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    async def traces(request: Request) -> Response:
        status = state.answers.pop(0) if state.answers else 200
        if status != 200:
            return Response(b"", status_code=status)
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        state.requests.append(message)
        state.headers.append(dict(request.headers))
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    gen = _serve(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])]))
    state.url = next(gen) + "/v1/traces"
    yield state
    next(gen, None)
