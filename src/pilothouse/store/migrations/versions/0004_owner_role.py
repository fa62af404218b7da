"""The `owner` role: the bootstrap key of an existing store becomes the instance owner.

Before this revision the bootstrap key was an `admin` that could act in every project; admins now manage their
own project only (docs/security.md), so the key the first start created keeps its reach as an `owner`.
It is the key named "bootstrap admin" that no other key created.

Revision ID: 0004_owner_role
Revises: 0003_limits
"""

from __future__ import annotations

from alembic import op

revision = "0004_owner_role"
down_revision = "0003_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE api_keys SET role = 'owner' WHERE role = 'admin' AND name = 'bootstrap admin' AND created_by IS NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE api_keys SET role = 'admin' WHERE role = 'owner'")
