"""The application: one ASGI callable serving the gateway (/v1), the management API (/api) and health.

`create_app(settings)` builds it; state (store, trace writer, providers) is created in the lifespan, so
importing this module has no side effects.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from pilothouse import __version__
from pilothouse.config import Settings
from pilothouse.errors import ApiError
from pilothouse.prompts.monitor import start_canary_monitor
from pilothouse.server.api import (
    audit,
    budgets,
    costs,
    keys,
    prompt_canary,
    prompt_promotion,
    prompt_stats,
    prompts,
    scores,
    traces,
)
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_model_access
from pilothouse.server.gateway_asgi import FAST_PATHS, GatewayEndpoints
from pilothouse.server.state import AppState, build_state, close_state, warm_models

log = logging.getLogger("pilothouse.server")

OnReady = Callable[[AppState], None]


def _error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    problems = []
    first_param = None
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc) or "body"
        first_param = first_param or where
        problems.append(f"{where}: {err.get('msg')}")
    body = {
        "error": {
            "message": "invalid request: " + "; ".join(problems),
            "type": "invalid_request_error",
            "param": first_param,
            "code": "validation_error",
        }
    }
    return JSONResponse(body, status_code=422)


def build_api(settings: Settings, on_ready: OnReady | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await asyncio.to_thread(build_state, settings)
        app.state.pilothouse = state
        await state.admission.start()  # limits and budgets: check Redis, load definitions, seed budgets
        await warm_models(state)
        # Objects alive after start-up never die; keep the collector from rescanning them under load.
        gc.collect()
        gc.freeze()
        monitor = start_canary_monitor(state)
        if on_ready is not None:
            on_ready(state)
        try:
            yield
        finally:
            await monitor.stop()
            await close_state(state)

    api = FastAPI(
        title="Pilothouse",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a key like every non-health endpoint
    )

    @api.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @api.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        body = {"error": {"message": message, "type": "api_error", "param": None, "code": "internal_error"}}
        return JSONResponse(body, status_code=500)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=exc.status_code)

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @api.get("/readyz", tags=["health"])
    def readyz(state: StateDep) -> JSONResponse:
        checks = {"store": state.store.ping(), "models": state.models_ready}
        ok = all(checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
        if state.warm_error:
            body["error"] = state.warm_error
        return JSONResponse(body, status_code=200 if ok else 503)

    @api.get("/v1/models", tags=["gateway"])
    def models(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
        require_model_access(principal)
        return {"object": "list", "data": state.gateway.list_models()}

    @api.get("/v1/models/{model_id:path}", tags=["gateway"])
    def model(model_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
        require_model_access(principal)
        for entry in state.gateway.list_models():
            if entry["id"] == model_id:
                return entry
        kind = state.gateway.catalog[model_id].kind if model_id in state.gateway.catalog else "chat"
        state.gateway.resolve(model_id, kind)  # raises the not-found error with the list of models
        raise AssertionError("unreachable")

    @api.get("/api/openapi.json", include_in_schema=False)
    def openapi(principal: PrincipalDep) -> dict[str, Any]:
        return api.openapi()

    api.include_router(keys.router)
    api.include_router(traces.router)
    api.include_router(audit.router)
    api.include_router(budgets.router)
    api.include_router(prompts.router)
    api.include_router(prompt_promotion.router)
    api.include_router(prompt_canary.router)
    api.include_router(prompt_stats.router)
    api.include_router(scores.router)
    api.include_router(costs.router)
    return api


class PilothouseApp:
    """Routes the two hot gateway endpoints straight to plain ASGI and everything else to FastAPI."""

    def __init__(self, settings: Settings, on_ready: OnReady | None = None) -> None:
        self.settings = settings
        self.api = build_api(settings, on_ready)
        self._gateway: GatewayEndpoints | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in FAST_PATHS:
            if self._gateway is None:
                self._gateway = GatewayEndpoints(self.api.state.pilothouse)
            await self._gateway(scope, receive, send)
            return
        await self.api(scope, receive, send)


def create_app(settings: Settings, on_ready: OnReady | None = None) -> PilothouseApp:
    return PilothouseApp(settings, on_ready)
