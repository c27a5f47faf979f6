"""Run Alembic migrations from code, serialised across replicas on PostgreSQL."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

import migrations

# Any constant works; it only has to be the same in every replica ("DPLYBOT" in ASCII).
ADVISORY_LOCK_ID = 0x44504C59424F54
# Alembic loads env.py as a module per run, which is not thread-safe; one migration per process at a time.
_PROCESS_LOCK = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at our migrations, optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    with _PROCESS_LOCK, _replica_lock(engine), engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            yield conn
            return
        # A session-level lock: a second replica waits here until the first has finished migrating.
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        conn.commit()
        try:
            yield conn
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
            conn.commit()


@contextmanager
def _replica_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, serialise processes with a lock file beside it (PostgreSQL uses an advisory lock)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision`."""
    with _migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to `revision` (`base` removes everything)."""
    with _migration_connection(engine) as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of the bot."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
