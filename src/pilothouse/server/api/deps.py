"""FastAPI dependencies: the server state and the authenticated principal (an API key, or a dashboard session)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from pilothouse.principal import Principal
from pilothouse.server.session_auth import SESSION_COOKIE, session_principal
from pilothouse.server.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.pilothouse
    return state


def get_principal(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Principal:  # the OpenAPI document declares the key as a bearer security scheme instead (server/openapi.py)
    state = get_state(request)
    if not authorization and SESSION_COOKIE in request.cookies:  # a dashboard session (server/session_auth.py)
        return session_principal(state.store, request, request.method)
    return state.auth.authenticate(authorization)


StateDep = Annotated[AppState, Depends(get_state)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
