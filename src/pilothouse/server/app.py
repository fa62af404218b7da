"""The application: one ASGI callable serving the gateway (/v1), the management API (/api) and health.

`create_app(settings)` builds it; state (store, trace writer, providers) is created in the lifespan, so
importing this module has no side effects.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from pilothouse import __version__
from pilothouse.config import ConfigError, Settings
from pilothouse.errors import ApiError, NotFound
from pilothouse.gateway.limits.store import LimitStoreUnavailable
from pilothouse.monitors.runner import MonitorRunner
from pilothouse.prompts.rollout.canary_monitor import CanaryMonitor
from pilothouse.server.api import annotations as annotation_queues
from pilothouse.server.api import (
    audit,
    budgets,
    cache,
    capture,
    costs,
    datasets,
    eval_history,
    experiments,
    feedback,
    ingest,
    keys,
    monitors,
    otlp,
    policies,
    policy_shadow,
    prompt_activity,
    prompt_canary,
    prompt_promotion,
    prompt_stats,
    prompts,
    rag_admin,
    rag_query,
    scores,
    tools,
    traces,
)
from pilothouse.server.api import flows as flow_runs
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_model_access
from pilothouse.server.body_guard import guard_body
from pilothouse.server.gateway_asgi import FAST_PATHS, GatewayEndpoints, send_json
from pilothouse.server.housekeeping import start_housekeeping
from pilothouse.server.openapi import AUTHENTICATED, error_responses, install
from pilothouse.server.state import AppState, build_state, close_state, start_ledger, warm_models
from pilothouse.store.engine import StoreError
from pilothouse.store.ids import new_trace_id
from pilothouse.ui.app import error_page, install_ui, is_page_request

log = logging.getLogger("pilothouse.server")

OnReady = Callable[[AppState], None]


class Readiness(BaseModel):
    """GET /readyz: 200 when the store answers, the models are loaded and (with Redis) the limit store answers,
    else 503 with the same body."""

    status: Literal["ready", "not ready"]
    checks: dict[str, bool] = Field(
        description="store: the database answers; models: local models are loaded; limits (with "
        "PILOTHOUSE_REDIS_URL): Redis answers, or no budget or limit is defined (checked at most once a second)."
    )
    error: str | None = Field(
        default=None, description="Why not: the models could not be loaded, Redis cannot be reached (named)."
    )


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


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(api: FastAPI, scope: Scope) -> str:
    """Every method some route serves at the request's path, for the Allow header of a 405."""
    routes = api.router.routes
    allowed = [m for m in _METHODS if any(r.matches({**scope, "method": m})[0] == Match.FULL for r in routes)]
    return ", ".join(allowed)


def start_canary_monitor(state: AppState) -> CanaryMonitor:
    """The background canary checks (every `settings.canary_check_interval_s`; 0: off): a rollback drops this
    process's cached labels of the prompt. Stop it with `await monitor.stop()` before the store closes."""
    resolver = state.gateway.prompts
    monitor = CanaryMonitor(
        state.store,
        state.settings.canary_check_interval_s,
        on_rollback=None if resolver is None else resolver.invalidate,
    )
    monitor.start()
    return monitor


def build_api(settings: Settings, on_ready: OnReady | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state = await asyncio.to_thread(build_state, settings)
            app.state.pilothouse = state
            await state.admission.start()  # limits and budgets: check Redis, load definitions, seed budgets
        except (StoreError, ConfigError, LimitStoreUnavailable) as exc:  # the operator's to fix: one line
            app.state.startup_error = str(exc)
            raise
        await start_ledger(state)  # calls dead replicas left in flight, pending settles (gateway/limits/ledger.py)
        await warm_models(state)
        # Objects alive after start-up never die; keep the collector from rescanning them under load.
        gc.collect()
        gc.freeze()
        monitor = start_canary_monitor(state)
        housekeeping = start_housekeeping(state)  # audit checkpoints, trace retention
        flow_runs.start_flow_worker(state)  # flow runs, those a stopped server left included
        monitors_runner = MonitorRunner(state.store, settings.monitor_interval_s)  # alert rules, online eval
        monitors_runner.start()
        if on_ready is not None:
            on_ready(state)
        try:
            yield
        finally:
            await monitor.stop()
            await monitors_runner.stop()
            await flow_runs.stop_flow_worker(state)  # runs in progress released to other workers
            await housekeeping.stop()  # the shutdown checkpoint, before the store closes
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
    async def api_error(request: Request, exc: ApiError) -> Response:
        if is_page_request(request):  # a dashboard page: an HTML page that says what went wrong
            return error_page(exc)
        return _error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        response = _validation_response(exc)
        if is_page_request(request):
            message = orjson.loads(bytes(response.body))["error"]["message"]
            return error_page(ApiError(message, status=422, code="validation_error"))
        return response

    @api.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        body = {"error": {"message": message, "type": "api_error", "param": None, "code": "internal_error"}}
        return JSONResponse(body, status_code=500)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")  # a browser; API clients get JSON
        if exc.status_code == 404 and wants_html and is_page_request(request):
            return error_page(NotFound(f"there is no page at {request.url.path}"))
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette's Allow names one route's methods; a path can have several routes
            headers["Allow"] = _allowed_methods(api, request.scope)
            message = f"method {request.method} not allowed; this path supports {headers['Allow']}"
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @api.get("/readyz", tags=["health"], response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(state: StateDep) -> JSONResponse:
        checks = {"store": await asyncio.to_thread(state.store.ping), "models": state.models_ready}
        errors = [state.warm_error] if state.warm_error else []
        if settings.redis_url:
            limits_down = await state.admission.readiness()
            checks["limits"] = limits_down is None
            errors += [limits_down] if limits_down else []
        ok = all(checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
        if errors:
            body["error"] = "; ".join(errors)
        return JSONResponse(body, status_code=200 if ok else 503)

    @api.get("/v1/models", tags=["gateway"], responses=error_responses(401, 403))
    def models(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
        require_model_access(principal)
        return {"object": "list", "data": state.gateway.list_models()}

    @api.get("/v1/models/{model_id:path}", tags=["gateway"], responses=error_responses(401, 403, 404))
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

    # Each router with the error statuses its routes can answer, declared once here (server/openapi.py adds
    # those of the body guard to every route that takes a body).
    for router, statuses in (
        (keys.router, (400, 404, 409)),
        (traces.router, (400, 404)),
        (audit.router, (400, 404)),
        (budgets.router, (400, 404, 409, 503)),  # 503: Redis, which holds the spend, is unreachable
        (prompts.router, (400, 404, 409)),
        (prompt_promotion.router, (400, 404, 409)),
        (prompt_canary.router, (400, 404, 409)),
        (prompt_stats.router, (400, 404)),
        (prompt_activity.router, (400, 404)),
        (scores.router, (400, 404)),
        (feedback.router, (400, 404)),
        (ingest.router, (400, 404)),
        (costs.router, (400, 404)),
        (cache.router, (400, 404)),
        (capture.router, (400, 404)),
        (policies.router, (400, 404)),
        (policy_shadow.router, (400, 404)),
        (tools.router, (400, 404)),
        (monitors.router, (400, 404, 409)),
        (datasets.router, (400, 404)),
        (experiments.router, (400, 404, 409)),
        (eval_history.router, (400, 404)),
        (annotation_queues.router, (400, 404, 409)),
        (flow_runs.router, (400, 404, 409)),
        (rag_admin.router, (400, 404, 409)),
        (rag_query.router, (400, 404)),
        (otlp.router, (400,)),  # POST /v1/traces (OTLP/HTTP); its 415 is declared on the route
    ):
        api.include_router(router, responses=error_responses(*AUTHENTICATED, *statuses))
    install_ui(api)  # the dashboard: pages at /, assets at /ui/static (ui/app.py)
    install(api)
    return api


class PilothouseApp:
    """Routes the two hot gateway endpoints and OTLP ingest straight to plain ASGI, everything else to FastAPI."""

    def __init__(self, settings: Settings, on_ready: OnReady | None = None) -> None:
        self.settings = settings
        self.api = build_api(settings, on_ready)
        self._gateway: GatewayEndpoints | None = None
        self._otlp: otlp.OtlpEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.api(scope, receive, self._report_startup(send))
            return
        if scope["type"] == "http" and scope["path"] == otlp.ROUTE and otlp.serves(scope):  # OTLP with a key
            if self._otlp is None:
                self._otlp = otlp.OtlpEndpoint(self.api.state.pilothouse)
            await self._otlp(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] in FAST_PATHS:
            if scope["method"] != "POST":
                await _method_not_allowed(send)
                return
            if self._gateway is None:
                self._gateway = GatewayEndpoints(self.api.state.pilothouse)
            await self._gateway(scope, receive, send)
            return
        await guard_body(self.api, self.settings, scope, receive, send)  # body size, depth, read deadline

    def _report_startup(self, send: Send) -> Send:
        """A start-up failure the operator fixes (Redis or the database unreachable, a bad setting) is reported
        as its one-line message instead of the traceback the server would log."""

        async def reported(message: MutableMapping[str, Any]) -> None:
            failure = getattr(self.api.state, "startup_error", None)
            if message["type"] == "lifespan.startup.failed" and failure:
                message = {**message, "message": failure}
            await send(message)

        return reported


async def _method_not_allowed(send: Send) -> None:
    error = ApiError("method not allowed; this path supports POST", status=405, headers={"Allow": "POST"})
    await send_json(send, 405, error.body(), new_trace_id(), error.headers)


def create_app(settings: Settings, on_ready: OnReady | None = None) -> PilothouseApp:
    return PilothouseApp(settings, on_ready)
