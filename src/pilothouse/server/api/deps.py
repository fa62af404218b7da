"""FastAPI dependencies: the server state and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from pilothouse.principal import Principal
from pilothouse.server.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.pilothouse
    return state


def get_principal(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Principal:  # the OpenAPI document declares the key as a bearer security scheme instead (server/openapi.py)
    return get_state(request).auth.authenticate(authorization)


StateDep = Annotated[AppState, Depends(get_state)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
