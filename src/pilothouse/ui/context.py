"""Who is looking at a page: the dashboard session behind the request, as a FastAPI dependency.

`UiDep` gives a page its `UiContext` (server state, the principal the session acts as, the CSRF token the page
embeds). Without a live session the request is sent to the sign-in page (`LoginRequired`, handled in ui/app.py);
`require_ui_role` refuses a page the key's role may not see, exactly as the API would (403, rendered as a page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from pilothouse.errors import Forbidden
from pilothouse.principal import Principal
from pilothouse.server.api.deps import get_state
from pilothouse.server.session_auth import SESSION_COOKIE, load_session
from pilothouse.server.state import AppState
from pilothouse.store.keys import role_at_least


class LoginRequired(Exception):
    """No live session: answer with a redirect to the sign-in page, coming back to `next_path` after."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def location(self) -> str:
        return "/login?next=" + quote(self.next_path, safe="/")


@dataclass(frozen=True, slots=True)
class UiContext:
    """A page request: the server state, the session's principal and CSRF token, the request itself."""

    state: AppState
    principal: Principal
    csrf_token: str
    request: Request


def ui_context(request: Request) -> UiContext:
    state = get_state(request)
    session = load_session(state.store, request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    principal = Principal(session.key_id, session.project_id, session.role)
    return UiContext(state, principal, session.csrf_token, request)


UiDep = Annotated[UiContext, Depends(ui_context)]


def require_ui_role(ctx: UiContext, minimum: str) -> None:
    """Refuse the page unless the session's key has at least `minimum` (the API's rule for the same data)."""
    if not role_at_least(ctx.principal.role, minimum):
        raise Forbidden(
            f"this page needs the '{minimum}' role; you signed in with a '{ctx.principal.role}' key",
            code="page_forbidden",
        )
