"""Alembic environment: uses the engine or connection handed over by `pilothouse.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from pilothouse.store.tables import metadata

config = context.config


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given: Connection | None = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine: Engine = config.attributes["engine"]
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
