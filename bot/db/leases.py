"""Claims that end with their owner: each process holds a lock that only its death releases.

A lease (a deployment the reconciler claimed, an outbox row the sender marked SENDING, a decision a click or a
retry is sending) names its owner, or one claim of it (`claim_name`: `host:pid/click:…`). The lease's
time is only the bound for an owner that is alive but stuck; an owner that died (kill -9, a lost machine) frees its
claims at once, because every claimant asks which owners are still alive:
- PostgreSQL: a session-scoped advisory lock on a connection the process keeps open; the server drops it the moment
  that connection goes, and `pg_locks` shows who holds one.
- SQLite (one machine): an exclusive `flock` on a file beside the database; the kernel drops it with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import get_logger

log = get_logger(__name__)

# The first half of every owner's advisory lock key ("DBOT"); the second half is a hash of the owner's name.
NAMESPACE = 0x44424F54
_LIVE_KEYS = text(
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
    " AND classid = CAST(:ns AS oid) AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def owner_key(owner: str, scope: str = "") -> int:
    """The second half of an owner's advisory lock key (a positive int4, the same in every process).

    Advisory locks are per database; the scope (the schema) keeps two installations in one database apart.
    """
    return zlib.crc32(f"{scope}/{owner}".encode()) & 0x7FFFFFFF


def claim_name(process: str, what: str) -> str:
    """A lease owner's name that ends with `process` (one claim among the process's own, e.g. a click's)."""
    return f"{process}/{what}"


def process_of(owner: str) -> str | None:
    """The process a lease owner's name ties it to; None for a name no process holds a lock for."""
    if owner.startswith("click:"):
        return None  # written before claims were named after their process: only its lease's time ends it
    return owner.split("/", 1)[0]


class Liveness:
    """This process's proof of life for one owner name, and the test of other owners'."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine, self.owner = engine, owner
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._file: IO[str] | None = None
        self._dir = _lock_dir(engine)
        self._scope = ""  # PostgreSQL: the schema the tables live in

    def hold(self) -> None:
        """Take (or take again, after a lost connection) this owner's lock."""
        with self._lock:
            if self.engine.dialect.name == "postgresql":
                self._hold_advisory()
            elif self._dir is not None and self._file is None:
                self._dir.mkdir(parents=True, exist_ok=True)
                self._file = (self._dir / _file_name(self.owner)).open("a")
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _hold_advisory(self) -> None:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return
        # A connection of its own, outside SQLAlchemy's pool: a pooled one handed back would carry the lock to
        # whoever takes it next, and this one closes quietly with its owner.
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(url, autocommit=True)
        scope = conn.execute("SELECT current_schema()").fetchone()
        self._scope = str(scope[0]) if scope and scope[0] else ""
        key = owner_key(self.owner, self._scope)
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, key)).fetchone()
        got = bool(row and row[0])
        if not got:
            log.warning("another process holds this owner's liveness lock (same name?)", owner=self.owner)
        self._conn = conn

    def dead(self, session: Session, owners: Iterable[str | None]) -> set[str]:
        """The owners among `owners` whose process has gone (this one is never among them)."""
        others = {o for o in owners if o is not None and o != self.owner}
        if self.engine.dialect.name == "postgresql":
            live = set(session.scalars(_LIVE_KEYS, {"ns": NAMESPACE}))
            if owner_key(self.owner, self._scope) not in live:
                self._reconnect()
            return {o for o in others if owner_key(o, self._scope) not in live}
        if self._dir is None:
            return set()  # an in-memory database lives in one process: nobody else can have died
        return {o for o in others if not _file_locked(self._dir / _file_name(o))}

    def dead_claims(self, session: Session, owners: Iterable[str | None]) -> set[str]:
        """The lease owners among `owners` (process names, or `claim_name`s) whose process has gone."""
        named = {o: process_of(o) for o in owners if o is not None}
        gone = self.dead(session, {p for p in named.values() if p is not None})
        return {o for o, p in named.items() if p in gone}

    def _reconnect(self) -> None:
        log.warning("this process's liveness lock was lost; taking it again", owner=self.owner)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._hold_advisory()

    def __del__(self) -> None:
        # Nobody uses this owner's lock any more (the process goes on: tests, a rebuilt sender): give it up.
        with contextlib.suppress(Exception):  # at interpreter exit the database may be gone already
            self.close()

    def close(self) -> None:
        """Give the lock up (a clean stop: its claims were handed back already)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._file is not None:
                self._file.close()
                self._file = None


# Shared while someone uses it (the reconciler and the sender of one process have one owner name, so one lock).
_HELD: weakref.WeakValueDictionary[tuple[int, str], Liveness] = weakref.WeakValueDictionary()
_HELD_LOCK = threading.Lock()


def liveness(sessions: sessionmaker[Session], owner: str) -> Liveness:
    """This process's Liveness for `owner` on the sessions' database, held."""
    engine: Engine = sessions.kw["bind"]
    with _HELD_LOCK:
        found = _HELD.get((id(engine), owner))
        if found is None or found.engine is not engine:
            found = Liveness(engine, owner)
            _HELD[(id(engine), owner)] = found
    found.hold()
    return found


def _lock_dir(engine: Engine) -> Path | None:
    if engine.dialect.name == "postgresql":
        return None
    database = make_url(engine.url).database
    if not database or database == ":memory:" or database.startswith("file::memory"):
        return None
    return Path(f"{os.path.abspath(database)}.owners")


def _file_name(owner: str) -> str:
    return f"{owner_key(owner):08x}-{''.join(c if c.isalnum() else '_' for c in owner)[:80]}.lock"


def _file_locked(path: Path) -> bool:
    """True while a live process holds `path`'s flock (a missing file: nobody ever held it)."""
    try:
        with path.open() as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(probe, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False
