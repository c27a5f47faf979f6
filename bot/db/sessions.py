"""Database engine and sessions: one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Engine, Update, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

T = TypeVar("T")
WRITE_ATTEMPTS = 5


class DatabaseUnavailable(Exception):
    """The database cannot be reached or the URL is unusable; the message is one clear line."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs (SQLite: FKs, WAL, busy timeout)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"DATABASE_URL is not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "default"):
        # psycopg 3 is the driver we ship; a bare postgresql:// URL would look for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself so "BEGIN IMMEDIATE" below takes the write lock up front.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if ":memory:" not in url and url not in ("sqlite://", "sqlite+pysqlite://"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers queue on the lock at BEGIN instead of failing later with "database is locked".
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with one line if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot reach the database at {where}: {reason}") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (handlers render them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def written_again(work: Callable[[], T], attempts: int = WRITE_ATTEMPTS) -> T:
    """Run a unit of work, again when a concurrent writer (another replica) won the row's version check or a
    deadlock chose it: the work reads the row afresh each time, so it sees what the other wrote."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except (StaleDataError, OperationalError):
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def is_postgres(engine_or_session: Engine | Session) -> bool:
    """True on PostgreSQL (row locks with SKIP LOCKED, advisory locks)."""
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


def rows_updated(session: Session, stmt: Update) -> int:
    """Run an UPDATE in the session; the number of rows it matched."""
    # Session.execute is typed as returning a plain Result; for an UPDATE it is a CursorResult, which has rowcount.
    return cast("CursorResult[Any]", session.execute(stmt)).rowcount
