"""The store: one SQLAlchemy engine, the tables, Alembic migrations and one repository module per aggregate."""

from pilothouse.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
