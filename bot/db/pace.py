"""Slack's pace in the database, so every replica keeps it: when a channel's next post or a held method may go.

A row says "not before this time". `reserve` takes a slot atomically (one statement: of two replicas asking at once,
one gets it); `hold` pushes a key later, never earlier (Retry-After); `held` reads what holds now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.db.sessions import is_postgres
from models import SlackPace


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(SlackPace) if is_postgres(session) else sqlite.insert(SlackPace)


def held(session: Session, keys: Iterable[str], now: datetime) -> dict[str, datetime]:
    """The keys among `keys` that hold after `now`, with their end."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    stmt = select(SlackPace.key, SlackPace.not_before).where(SlackPace.key.in_(wanted), SlackPace.not_before > now)
    return {key: until for key, until in session.execute(stmt)}


def hold(session: Session, key: str, until: datetime) -> None:
    """Nothing for `key` before `until` (a later hold already there stays)."""
    stmt = _insert(session).values(key=key, not_before=until)
    later = case(
        (stmt.excluded.not_before > SlackPace.not_before, stmt.excluded.not_before), else_=SlackPace.not_before
    )
    session.execute(stmt.on_conflict_do_update(index_elements=[SlackPace.key], set_={"not_before": later}))


def reserve(session: Session, slots: Mapping[str, datetime], now: datetime) -> set[str]:
    """Take each free key's slot (free: no row, or its time has come) until its time; return the keys taken."""
    if not slots:
        return set()
    stmt = _insert(session).values([{"key": k, "not_before": until} for k, until in sorted(slots.items())])
    stmt = stmt.on_conflict_do_update(
        index_elements=[SlackPace.key],
        set_={"not_before": stmt.excluded.not_before},
        where=SlackPace.not_before <= now,
    )
    return set(session.scalars(stmt.returning(SlackPace.key)))


def set_times(session: Session, times: Mapping[str, datetime]) -> None:
    """Put keys this process holds at exact times (a reservation shortened to when the call really went)."""
    if not times:
        return
    stmt = _insert(session)
    stmt = stmt.on_conflict_do_update(index_elements=[SlackPace.key], set_={"not_before": stmt.excluded.not_before})
    session.execute(stmt, [{"key": k, "not_before": at} for k, at in sorted(times.items())])
