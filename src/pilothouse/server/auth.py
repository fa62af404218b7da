"""API key authentication with a short per-process cache, and role checks.

Keys are looked up by SHA-256 hash. A verified key is cached for `key_cache_ttl_s` seconds so the hot path
does not hit the database on every request; revocation reaches every replica within that time.
Roles rank viewer < service < developer < admin < owner (store/keys.py); which project a request may act
in is server/scope.py's rule.
"""

from __future__ import annotations

import time

from pilothouse.errors import Forbidden, Unauthorized
from pilothouse.principal import Principal
from pilothouse.store.engine import Store
from pilothouse.store.keys import OWNER, ROLES, find_by_secret, hash_key, role_at_least

MODEL_ROLE = "service"
"""The least role that calls models (the gateway) and writes traces and scores; viewers only read."""


class Authenticator:
    def __init__(self, store: Store, ttl_s: float) -> None:
        self._store = store
        self._ttl = ttl_s
        self._cache: dict[str, tuple[Principal | None, float]] = {}

    def _lookup(self, secret: str) -> Principal | None:
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._store.connect() as conn:
            key = find_by_secret(conn, secret)
        principal = None if key is None or not key.active else Principal(key.id, key.project_id, key.role)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (principal, now + self._ttl)
        return principal

    def forget(self) -> None:
        """Drop cached verdicts (after a local revocation, so it takes effect here at once)."""
        self._cache.clear()

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer <key>' (create keys with `pilothouse keys create`)",
                code="missing_api_key",
            )
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("Malformed Authorization header: expected 'Bearer <key>'", code="invalid_api_key")
        principal = self._lookup(secret.strip())
        if principal is None:
            raise Unauthorized("Invalid or revoked API key", code="invalid_api_key")
        return principal


def is_owner(principal: Principal) -> bool:
    return principal.role == OWNER


def require_role(principal: Principal, minimum: str) -> None:
    if not role_at_least(principal.role, minimum):
        raise Forbidden(f"this action needs the '{minimum}' role; the key's role is '{principal.role}'")


def require_model_access(principal: Principal) -> None:
    if not role_at_least(principal.role, MODEL_ROLE):
        allowed = ", ".join(ROLES[ROLES.index(MODEL_ROLE) :])
        raise Forbidden(f"'{principal.role}' keys cannot call models; use a key with one of the roles {allowed}")
