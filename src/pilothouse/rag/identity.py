"""Who a retrieval runs for: from the calling key (`Principal`) and what the request asserts.

- The project is always the key's own: a collection of another project is not found.
- A key of role `service` or above (an application, or a person's key above it) may act for its end user:
  the request names `user` and `groups` (`{"identity": {"user": "ana", "groups": ["sales"]}}` on a query,
  or the same inside a chat request's `rag` object). The application vouches for them, as it does for a
  trace's `user` today; the key's role is what makes the assertion trusted.
- Without an assertion a key acts as itself: user `key:<key id>`, no groups, so it reads the documents open to
  the whole project and those shared with that user name.
- `viewer` keys act as themselves only; asserting someone else is refused (403).
- An `admin` or `owner` key may ask for `{"all": true}` to inspect a collection without the access filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pilothouse.errors import Forbidden, InvalidRequest
from pilothouse.principal import Principal
from pilothouse.rag.types import Identity
from pilothouse.roles import ROLES

ASSERTS_FROM = "service"
SEES_ALL_FROM = "admin"
MAX_GROUPS = 256
MAX_NAME = 200


def _at_least(role: str, floor: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(floor)


def key_user(principal: Principal) -> str:
    """The user name a key acts as when it asserts nobody."""
    return f"key:{principal.key_id}"


def identity_for(principal: Principal, asserted: Mapping[str, Any] | None = None) -> Identity:
    """The identity a request runs as (see the module docstring). Raises InvalidRequest for a malformed
    assertion and Forbidden for one the key's role may not make."""
    if not asserted:
        return Identity(project_id=principal.project_id, user=key_user(principal))
    unknown = set(asserted) - {"user", "groups", "all"}
    if unknown:
        raise InvalidRequest(
            f"unknown identity field(s) {', '.join(sorted(unknown))}: use user, groups or all", param="identity"
        )
    if asserted.get("all"):
        if not _at_least(principal.role, SEES_ALL_FROM):
            raise Forbidden("only admin keys may read a collection without its access lists", param="identity.all")
        if asserted.get("user") is not None or asserted.get("groups"):
            raise InvalidRequest("identity.all cannot be combined with user or groups", param="identity")
        return Identity(project_id=principal.project_id, sees_all=True)
    if not _at_least(principal.role, ASSERTS_FROM):
        raise Forbidden(
            f"a {principal.role} key acts as itself: only service keys and above may name an end user",
            param="identity",
        )
    user = asserted.get("user")
    if user is not None and (not isinstance(user, str) or not user.strip() or len(user) > MAX_NAME):
        raise InvalidRequest(
            f"identity.user must be a non-empty string of at most {MAX_NAME} characters", param="identity.user"
        )
    groups = asserted.get("groups") or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise InvalidRequest(f"identity.groups must be a list of at most {MAX_GROUPS} names", param="identity.groups")
    for group in groups:
        if not isinstance(group, str) or not group.strip() or len(group) > MAX_NAME:
            raise InvalidRequest(
                f"each group must be a non-empty string of at most {MAX_NAME} characters", param="identity.groups"
            )
    return Identity(
        project_id=principal.project_id,
        user=user if user is not None else key_user(principal),
        groups=frozenset(groups),
    )
