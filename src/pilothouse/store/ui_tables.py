"""Tables of the dashboard (migration 0024): its login sessions.

A session is created when a person signs in with an API key; the browser holds only a random token (in an
`HttpOnly`, `SameSite=Strict` cookie), the table its SHA-256, so a copy of the database cannot be replayed.
The session acts as the key it was opened with: revoking the key ends the session at its next request.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, String, Table

from pilothouse.store.tables import metadata

ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_ui_sessions_expires_at", "expires_at"),
)
