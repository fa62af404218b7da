"""Wiring the dashboard into the server: sign-in and sign-out, the pages, the static assets, error pages.

`install_ui(api)` is called by server/app.py. Pages live in ui/pages/ (one module per section, each with a
`router`); `is_page_request` tells the server's error handlers to answer a page's error as an HTML page rather
than the API's JSON error body.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pilothouse.audit.chain import append_event
from pilothouse.errors import ApiError, Unauthorized
from pilothouse.principal import Principal
from pilothouse.server.api.deps import get_state
from pilothouse.server.session_auth import SESSION_COOKIE, load_session
from pilothouse.server.state import AppState
from pilothouse.store.ui_sessions import SESSION_TTL_S, close_session, open_session
from pilothouse.ui.context import LoginRequired
from pilothouse.ui.pages import ROUTERS
from pilothouse.ui.render import bare

_NOT_PAGES = ("/api/", "/v1/", "/healthz", "/readyz", "/ui/static/")
_MAX_FORM = 16_384

router = APIRouter(include_in_schema=False)


def is_page_request(request: Request) -> bool:
    """Whether the request is for a dashboard page (answered in HTML), not the API or the gateway."""
    path = request.url.path
    return not any(path == p.rstrip("/") or path.startswith(p) for p in _NOT_PAGES)


def error_page(exc: ApiError) -> HTMLResponse:
    heading = {401: "Sign-in needed", 403: "Not allowed", 404: "Not found"}.get(exc.status, "Cannot do that")
    return bare("error.html", status=exc.status, heading=heading, message=exc.message, signin=exc.status in (401, 403))


def _safe_next(value: str | None) -> str:
    """Only a path on this server (no `//host`, no scheme): an open redirect would help phishing."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        raise ApiError("the form is too large", status=413, code="form_too_large")
    fields = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items() if v}


def _sign_in(state: AppState, secret: str) -> tuple[Principal, str]:
    principal = state.auth.authenticate(f"Bearer {secret.strip()}")
    with state.store.begin() as conn:
        token, _ = open_session(conn, principal.key_id)
        append_event(
            conn,
            actor=principal.key_id,
            action="dashboard.sign_in",
            target=principal.key_id,
            project_id=principal.project_id,
            details={"role": principal.role},
        )
    return principal, token


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return bare("login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    target = _safe_next(form.get("next"))
    secret = form.get("api_key", "")
    if not secret.strip():
        return bare("login.html", status=400, next=target, error="Enter an API key.")
    state = get_state(request)
    try:
        _, token = await asyncio.to_thread(_sign_in, state, secret)
    except Unauthorized:
        return bare("login.html", status=401, next=target, error="That key is not valid or has been revoked.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL_S),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _sign_out(state: AppState, token: str, csrf: str) -> None:
    session = load_session(state.store, token)
    if session is None:
        return
    if csrf != session.csrf_token:
        raise ApiError("sign-out needs the page's CSRF token; reload the page and try again", status=403)
    with state.store.begin() as conn:
        close_session(conn, token)
        append_event(
            conn,
            actor=session.key_id,
            action="dashboard.sign_out",
            target=session.key_id,
            project_id=session.project_id,
        )


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    await asyncio.to_thread(_sign_out, get_state(request), token, form.get("csrf_token", ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def install_ui(api: FastAPI) -> None:
    """Add the dashboard to the server's FastAPI app."""
    api.mount("/ui/static", StaticFiles(packages=[("pilothouse.ui", "static")]), name="ui-static")
    api.include_router(router)
    for page_router in ROUTERS:
        api.include_router(page_router, include_in_schema=False)

    @api.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("x-live"):  # a live view's refresh: tell its script, do not redirect
            return Response(status_code=401)
        return RedirectResponse(exc.location, status_code=303)
