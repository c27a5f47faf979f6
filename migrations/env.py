"""Alembic environment: runs on the connection bot.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `deploybot migrate` (bot.migrate), which passes a connection")
_run(connection)
