"""The roles of API keys, lowest to highest; each may do what the ones before it may (docs/security.md).

A module of its own, free of the store, so the CLI can name the roles without importing SQLAlchemy.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "service", "developer", "admin", "owner"]
ROLES: tuple[str, ...] = get_args(Role)
"""Every role, lowest to highest."""
OWNER = "owner"
